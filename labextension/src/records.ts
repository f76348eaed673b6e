/**
 * Turns as the server stores them (a reload or a restart shows the chat again: plain JSON,
 * nothing left waiting), and the quiet line of the agent's own helper code in the kernel.
 */
import { ICard, IProposal, ITurn, Part, nextCardId } from './turns';

/** A quiet line's count: the agent's own helper code ran in the kernel for `purpose`. */
export function addHelperRun(turn: ITurn, purpose: string): void {
  const helper = turn.helper ?? {};
  helper[purpose] = (helper[purpose] ?? 0) + 1;
  turn.helper = helper;
}

/** The quiet line of a turn's helper code ("try a candidate in a fork ×3, ..."), or "". */
export function helperLine(turn: ITurn): string {
  const entries = Object.entries(turn.helper ?? {});
  return entries
    .map(([purpose, n]) => (n > 1 ? `${purpose} ×${n}` : purpose))
    .join(', ');
}

// -- stored turns ----------------------------------------------------------------------

const TRANSIENT = new Set(['status', 'firstText']);

/** A finished turn as the server stores it (plain JSON). */
export function turnRecord(turn: ITurn): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(turn)) {
    if (!TRANSIENT.has(key) && value !== undefined) {
      out[key] = value;
    }
  }
  return JSON.parse(JSON.stringify(out));
}

function isObj(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A stored turn back as the panel shows it (null when it is not one). */
export function turnFromRecord(value: unknown): ITurn | null {
  if (!isObj(value) || typeof value.id !== 'string') {
    return null;
  }
  const mode = value.mode;
  if (mode !== 'ask' && mode !== 'agent' && mode !== 'fix') {
    return null;
  }
  const parts: Part[] = [];
  for (const part of Array.isArray(value.parts) ? value.parts : []) {
    if (isObj(part) && part.kind === 'text' && typeof part.text === 'string') {
      parts.push({ kind: 'text', text: part.text });
    } else if (isObj(part) && part.kind === 'card' && isObj(part.card)) {
      const card = { ...(part.card as unknown as ICard), id: nextCardId() };
      card.running = false;
      if (card.approval === 'pending') {
        card.approval = 'expired';
      }
      parts.push({ kind: 'card', card });
    }
  }
  const turn: ITurn = {
    ...(value as unknown as ITurn),
    request: String(value.request ?? ''),
    mode,
    parts,
    status: '',
    done: true,
    mutated: false,
    ran: Array.isArray(value.ran) ? (value.ran as string[]) : [],
    restored: true
  };
  turn.reason = turn.reason ?? 'cancelled';
  for (const p of turn.proposals ?? []) {
    restoreProposal(p);
  }
  return turn;
}

/** Said of a proposal whose run was cut off by a reload or a restart. */
export const INTERRUPTED_RUN =
  'the run was interrupted; check the cell before running it again';

/**
 * A stored proposal as the panel shows it. "Run it" has effects that must not happen
 * twice, so a proposal once clicked is never clickable again: one stored while `running`
 * (the page went away mid-run: the cell may have run, in part or in full) becomes `failed`
 * with INTERRUPTED_RUN, and any state that is not `ran` or `failed` counts as that too.
 */
function restoreProposal(p: IProposal): void {
  if (p.state === undefined || p.state === 'ran' || p.state === 'failed') {
    return;
  }
  p.state = 'failed';
  p.result = INTERRUPTED_RUN;
}
