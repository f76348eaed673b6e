// (Outcome imports agentOps, which imports the kernel runner: not needed here)
jest.mock('../runner', () => ({ kernelEval: jest.fn(), runCell: jest.fn() }));

import { IClaimResult } from '../protocol';
import {
  CLAIMED_ELSEWHERE,
  IProposalRunHost,
  ProposalClaims,
  runProposalOnce
} from '../proposalRun';
import { proposalRunnable } from '../components/Outcome';
import type { IProposal, ITurn } from '../turns';

function proposal(extra: Partial<IProposal> = {}): IProposal {
  return {
    source: "import os\nos.remove('raw.csv')",
    action: 'propose',
    note: 'deletes a file',
    effects: ['deletes files'],
    diff: '',
    ...extra
  };
}

function fixTurn(proposals: IProposal[]): ITurn {
  return {
    id: 'f1',
    request: 'Fix with Devstral: cell 2',
    mode: 'fix',
    cellId: 'c2',
    parts: [],
    status: '',
    done: true,
    mutated: false,
    ran: [],
    proposals
  } as unknown as ITurn;
}

/** A host whose server answers each claim with `answer` (or never). */
function host(answer: (turn: string, index: number) => IClaimResult | Error) {
  const runs: string[] = [];
  const claims: [string, number][] = [];
  let stores = 0;
  const h: IProposalRunHost = {
    claim: async (turn, index) => {
      claims.push([turn, index]);
      const a = answer(turn, index);
      if (a instanceof Error) {
        throw a;
      }
      return a;
    },
    run: async source => {
      runs.push(source);
      return { failed: false, result: 'ran [7]' };
    },
    changed: () => undefined,
    store: () => {
      stores++;
    }
  };
  return { h, runs, claims, stores: () => stores };
}

const ok = (turn: string, index: number): IClaimResult => ({
  type: 'claim_result',
  turn,
  index,
  ok: true,
  state: 'running'
});

describe('runProposalOnce', () => {
  it('claims, then runs the cell once and reports it', async () => {
    const p = proposal();
    const turn = fixTurn([proposal(), p]);
    const { h, runs, claims, stores } = host(ok);
    expect(await runProposalOnce(turn, p, h)).toBe(true);
    expect(claims).toEqual([['f1', 1]]);
    expect(runs).toEqual([p.source]);
    expect(p.state).toBe('ran');
    expect(p.result).toBe('ran [7]');
    expect(stores()).toBe(1);
  });

  it.each(['running', 'ran', 'failed', 'claimed'] as const)(
    'refuses a proposal already %s: no claim, no run',
    async state => {
      const p = proposal({ state });
      const { h, runs, claims } = host(ok);
      expect(await runProposalOnce(fixTurn([p]), p, h)).toBe(false);
      expect(claims).toEqual([]);
      expect(runs).toEqual([]);
      expect(p.state).toBe(state);
      expect(proposalRunnable(p, true)).toBe(false);
    }
  );

  it('a double click claims and runs once', async () => {
    const p = proposal();
    const turn = fixTurn([p]);
    const { h, runs, claims } = host(ok);
    const both = await Promise.all([
      runProposalOnce(turn, p, h),
      runProposalOnce(turn, p, h)
    ]);
    expect(both).toEqual([true, false]);
    expect(claims).toHaveLength(1);
    expect(runs).toHaveLength(1);
  });

  it.each([
    ['running', 'claimed'],
    ['ran', 'ran'],
    ['failed', 'failed']
  ] as const)(
    'a claim refused (stored %s) runs nothing and is never runnable again',
    async (stored, shown) => {
      const p = proposal();
      const { h, runs } = host((turn, index) => ({
        type: 'claim_result',
        turn,
        index,
        ok: false,
        state: stored,
        message: 'it was run already'
      }));
      expect(await runProposalOnce(fixTurn([p]), p, h)).toBe(false);
      expect(runs).toEqual([]);
      expect(p.state).toBe(shown);
      expect(p.result).toBe(CLAIMED_ELSEWHERE);
      expect(proposalRunnable(p, true)).toBe(false);
    }
  );

  it('a proposal the server does not know is never run', async () => {
    const p = proposal();
    const { h, runs } = host((turn, index) => ({
      type: 'claim_result',
      turn,
      index,
      ok: false,
      state: null,
      message: 'that turn is not stored'
    }));
    expect(await runProposalOnce(fixTurn([p]), p, h)).toBe(false);
    expect(runs).toEqual([]);
    expect(p.state).toBe('failed');
    expect(p.result).toMatch(/not stored/);
  });

  it('no answer runs nothing (the server decides the next click)', async () => {
    const p = proposal();
    const { h, runs } = host(() => new Error('the connection closed'));
    expect(await runProposalOnce(fixTurn([p]), p, h)).toBe(false);
    expect(runs).toEqual([]);
    expect(p.state).toBeUndefined();
    expect(p.result).toMatch(/not run: the connection closed/);
  });

  it('a proposal not in the turn is refused', async () => {
    const { h, claims } = host(ok);
    expect(await runProposalOnce(fixTurn([]), proposal(), h)).toBe(false);
    expect(claims).toEqual([]);
  });
});

describe('ProposalClaims', () => {
  it('answers the claim waited for, and fails them all on close', async () => {
    const claims = new ProposalClaims();
    const first = claims.expect('f1', 0);
    const second = claims.expect('f1', 1);
    claims.settle(ok('f1', 0));
    claims.settle(ok('f9', 0)); // not waited for: dropped
    await expect(first).resolves.toMatchObject({ ok: true, index: 0 });
    claims.failAll('the connection closed');
    await expect(second).rejects.toThrow('the connection closed');
  });

  it('gives up when the server does not answer', async () => {
    const claims = new ProposalClaims();
    await expect(claims.expect('f1', 0, 10)).rejects.toThrow(/did not answer/);
  });
});
