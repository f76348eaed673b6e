/**
 * The browser's half of approvals: the same rule as the server, a gate that lets through
 * exactly the ops the user approved (once each), and AgentOps refusing an op that needs an
 * approval it never got, whatever the server says.
 */
// runner.ts reaches the kernel through @jupyterlab/cells (ES modules): not needed here
jest.mock('../runner', () => ({ kernelEval: jest.fn(), runCell: jest.fn() }));

import { AgentOps, REFUSED, parseUnified } from '../agentOps';
import { ApprovalGate, canonical, needsApproval } from '../approvals';
import {
  ClientMessage,
  IApprovalRequest,
  IPolicies,
  Op,
  parseServer
} from '../protocol';
import { ITurn, newTurn } from '../turns';

const ASK: IPolicies = { edit: 'ask', run: 'ask' };
const AUTO: IPolicies = { edit: 'auto', run: 'auto' };

function op(name: string, args: object, extra: object = {}): Op {
  return parseServer({
    type: 'op',
    turn: 't',
    op: 'o-1',
    name,
    args,
    ...extra
  }) as Op;
}

describe('needsApproval', () => {
  it('is the server rule', () => {
    expect(needsApproval(op('delete_cell', { cell_id: 'a' }), AUTO)).toBe(
      'deletes always ask'
    );
    const code = { code: 'print(1)', timeout: 30 };
    expect(needsApproval(op('kernel_eval', code), AUTO)).toMatch(/model wrote/);
    expect(
      needsApproval(
        op('kernel_eval', code, { helper: true, purpose: 'x' }),
        ASK
      )
    ).toBeNull();
    const edit = op('replace_source', { cell_id: 'a', source: 'x' });
    expect(needsApproval(edit, ASK)).toBe('edits: ask');
    expect(needsApproval(edit, AUTO)).toBeNull();
    expect(needsApproval(edit, ASK, 'a')).toBeNull(); // the Fix's own cell
    expect(needsApproval(edit, ASK, 'b')).toBe('edits: ask');
    const run = op('run_cell', { cell_id: 'a', timeout: 60 });
    expect(needsApproval(run, ASK)).toBe('runs: ask');
    expect(needsApproval(run, ASK, 'a')).toBeNull();
    expect(needsApproval(op('list_cells', {}), ASK)).toBeNull();
  });
});

describe('ApprovalGate', () => {
  it('lets through exactly the approved ops, once', () => {
    const gate = new ApprovalGate();
    const del = op('delete_cell', { cell_id: 'a' });
    expect(gate.take(del)).toBe(false);
    gate.approve([{ op: 'o-1', name: 'delete_cell', args: { cell_id: 'a' } }]);
    expect(gate.take({ ...del, args: { cell_id: 'b' } } as Op)).toBe(false);
    expect(gate.take({ ...del, op: 'o-2' } as Op)).toBe(false);
    expect(gate.take(del)).toBe(true);
    expect(gate.take(del)).toBe(false);
    expect(canonical('x', { b: 1, a: [{ d: 1, c: 2 }] })).toBe(
      canonical('x', { a: [{ c: 2, d: 1 }], b: 1 })
    );
  });
});

function host(turn: ITurn, policies = ASK) {
  const sent: ClientMessage[] = [];
  return {
    sent,
    host: {
      panel: null,
      policies,
      turnFor: () => turn,
      reply: (msg: ClientMessage) => sent.push(msg),
      changed: () => undefined,
      cellRan: () => undefined
    }
  };
}

const REQUEST: IApprovalRequest = {
  type: 'approval_request',
  turn: 't',
  request: 'r-1',
  ops: [{ op: 'o-1', name: 'delete_cell', args: { cell_id: 'a' } }],
  what: 'delete cell 2',
  why: 'deletes always ask',
  diff: '--- a/x\n+++ b/x\n@@ -1 +0,0 @@\n-x = 1\n'
};

describe('AgentOps', () => {
  it('refuses an op that needs approval and has none', async () => {
    const turn = newTurn('go', 'agent');
    const { sent, host: h } = host(turn);
    const ops = new AgentOps(h);
    await ops.handle(op('delete_cell', { cell_id: 'a' }));
    expect(sent).toEqual([
      {
        type: 'op_result',
        op: 'o-1',
        ok: false,
        error: `${REFUSED} (deletes always ask)`
      }
    ]);
  });

  it('shows the approval card, echoes the ops on Approve, then lets the op in', async () => {
    const turn = newTurn('go', 'agent');
    const { sent, host: h } = host(turn);
    const ops = new AgentOps(h);
    ops.ask(REQUEST);
    const card = turn.parts[0].kind === 'card' ? turn.parts[0].card : null;
    expect(card).toMatchObject({
      approval: 'pending',
      what: 'delete cell 2',
      why: 'deletes always ask'
    });
    expect(card!.diff).toEqual([{ op: '-', text: 'x = 1' }]); // the server's diff
    ops.decide(card!, true);
    expect(sent).toEqual([
      { type: 'approval', request: 'r-1', approved: true, ops: REQUEST.ops }
    ]);
    await ops.handle(op('delete_cell', { cell_id: 'a' }));
    // approved: the gate let it in (the closed notebook is the only problem here)
    expect(sent[1]).toMatchObject({
      ok: false,
      error: 'the notebook is closed'
    });
  });

  it('Reject answers the request and lets nothing in', async () => {
    const turn = newTurn('go', 'agent');
    const { sent, host: h } = host(turn);
    const ops = new AgentOps(h);
    ops.ask(REQUEST);
    const card = turn.parts[0].kind === 'card' ? turn.parts[0].card : null;
    ops.decide(card!, false);
    expect(sent).toEqual([
      { type: 'approval', request: 'r-1', approved: false }
    ]);
    expect(card!.approval).toBe('rejected');
    await ops.handle(op('delete_cell', { cell_id: 'a' }));
    expect(sent[1]).toMatchObject({
      ok: false,
      error: expect.stringContaining(REFUSED)
    });
  });
});

describe('parseUnified', () => {
  it('keeps the lines, not the headers', () => {
    expect(
      parseUnified('--- a/c\n+++ b/c\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n')
    ).toEqual([
      { op: ' ', text: 'x' },
      { op: '-', text: 'y' },
      { op: '+', text: 'z' }
    ]);
  });
});
