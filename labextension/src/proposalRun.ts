/**
 * A proposal's "Run it", at most once ever. The proposal was never tried: its effects must
 * not happen twice. This page's memory is not enough (a reload, a dropped socket, a second
 * tab each have their own copy of the turn), so the server's stored chat decides: the page
 * claims the proposal (`claim_proposal`) and runs the cell only when the server answers that
 * this claim is the one that marked it `running`. A refusal shows it as run elsewhere and
 * never offers Run it again; no answer at all runs nothing (a later click claims again, and
 * the server still lets only one claim through).
 */
import { IClaimResult, oneLine } from './protocol';
import type { IProposal, ITurn } from './turns';

/** How long a claim waits for the server's answer. */
export const CLAIM_TIMEOUT_MS = 15_000;

/** Said of a proposal whose claim the server refused because it was claimed already. */
export const CLAIMED_ELSEWHERE =
  'already run from another tab or an earlier page: check the cell before running it yourself';

export interface IProposalRunHost {
  /** Ask the server for the claim; rejects when no answer comes (nothing was run). */
  claim(turnId: string, index: number): Promise<IClaimResult>;
  /** Put `source` in the turn's cell and run it once; the run's result line. */
  run(source: string): Promise<{ failed: boolean; result: string }>;
  /** The turn changed: re-render. */
  changed(): void;
  /** Keep the turn with the chat on the server (`save_turn`: `ran` or `failed`). */
  store(): void;
}

/**
 * Claim, then run once. Refuses (false) any proposal that has a state: clicked here, run,
 * failed or claimed elsewhere. Returns whether the cell ran.
 */
export async function runProposalOnce(
  turn: ITurn,
  proposal: IProposal,
  host: IProposalRunHost
): Promise<boolean> {
  const index = (turn.proposals ?? []).indexOf(proposal);
  if (proposal.state !== undefined || index < 0) {
    return false;
  }
  proposal.state = 'running'; // a second click meanwhile finds it taken
  proposal.result = 'claiming…';
  host.changed();
  let answer: IClaimResult;
  try {
    answer = await host.claim(turn.id, index);
  } catch (error) {
    // nothing ran; the server holds any claim that did reach it
    proposal.state = undefined;
    proposal.result = oneLine(
      `not run: ${String((error as Error).message ?? error)}`
    );
    host.changed();
    return false;
  }
  if (!answer.ok) {
    refused(proposal, answer);
    host.changed();
    return false;
  }
  proposal.result = undefined;
  host.changed();
  try {
    const { failed, result } = await host.run(proposal.source);
    proposal.state = failed ? 'failed' : 'ran';
    proposal.result = result;
  } catch (error) {
    proposal.state = 'failed';
    proposal.result = oneLine(String((error as Error).message ?? error));
  }
  host.store();
  host.changed();
  return true;
}

/** A refused claim: shown as run (or claimed) elsewhere, never runnable again. */
function refused(proposal: IProposal, answer: IClaimResult): void {
  if (answer.state === 'ran' || answer.state === 'failed') {
    proposal.state = answer.state;
    proposal.result = CLAIMED_ELSEWHERE;
  } else if (answer.state === 'running') {
    proposal.state = 'claimed';
    proposal.result = CLAIMED_ELSEWHERE;
  } else {
    proposal.state = 'failed'; // no such proposal on the server: never run from here
    proposal.result = `not run: ${answer.message ?? 'the server does not know it'}`;
  }
}

/** Claims waiting for the server's `claim_result`, by turn and proposal index. */
export class ProposalClaims {
  private _waiting = new Map<
    string,
    { resolve(r: IClaimResult): void; reject(e: Error): void }
  >();

  /** Wait for the answer to a claim about to be sent (rejects after `timeoutMs`). */
  expect(
    turn: string,
    index: number,
    timeoutMs = CLAIM_TIMEOUT_MS
  ): Promise<IClaimResult> {
    const key = `${turn}\n${index}`;
    this._waiting.get(key)?.reject(new Error('claimed again'));
    return new Promise<IClaimResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this._waiting.delete(key);
        reject(new Error('the server did not answer the claim'));
      }, timeoutMs);
      this._waiting.set(key, {
        resolve: r => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: e => {
          clearTimeout(timer);
          reject(e);
        }
      });
    });
  }

  /** The server's answer (one not waited for is dropped). */
  settle(answer: IClaimResult): void {
    const key = `${answer.turn}\n${answer.index}`;
    const waiting = this._waiting.get(key);
    this._waiting.delete(key);
    waiting?.resolve(answer);
  }

  /** The socket closed (or the chat changed): every claim waiting fails. */
  failAll(why: string): void {
    const waiting = [...this._waiting.values()];
    this._waiting.clear();
    for (const w of waiting) {
      w.reject(new Error(why));
    }
  }
}
