/**
 * The browser side of agent ops: approval cards for the steps the server asks about, then
 * each `op` carried out by cell id on the pinned notebook, shown as a card, answered with
 * `op_result`.
 *
 * Approvals: the server sends `approval_request` (what, why, the ops with their ids) and
 * sends those ops only after the user's click came back as `approval`. This side also
 * checks every op against the same rule ({@link needsApproval}) and refuses one that needs
 * approval and has none (an {@link ApprovalGate} records what the user approved, exactly).
 * The agent's own helper code in the kernel (`helper: true`) needs none: it is a quiet line.
 */
import type { ISharedNotebook } from '@jupyter/ydoc';
import type { NotebookPanel } from '@jupyterlab/notebook';

import { ApprovalGate, needsApproval } from './approvals';
import { IDiffLine, lineDiff } from './diff';
import {
  deleteCell,
  getCell,
  indexOf,
  insertCell,
  listCells,
  replaceSource
} from './notebookOps';
import {
  ClientMessage,
  IApprovalRequest,
  IPolicies,
  Op,
  OpValue,
  approval,
  oneLine,
  opFailed,
  opOk
} from './protocol';
import { kernelEval, runCell } from './runner';
import { addHelperRun } from './records';
import { ICard, ITurn, addCard } from './turns';
import { recordTiming } from './timings';

export const REFUSED = 'refused: this needs your approval and none was given';

type VisibleOp = Exclude<Op, { name: 'list_cells' }>;

/** What the ops need from their conversation. */
export interface IOpHost {
  readonly panel: NotebookPanel | null;
  readonly policies: IPolicies;
  turnFor(id: string): ITurn | undefined;
  reply(msg: ClientMessage): void;
  changed(): void;
  /** an op ran a cell (for the Fix buttons) */
  cellRan(panel: NotebookPanel, cellId: string, failed: boolean): void;
}

function message(error: unknown): string {
  return oneLine(String((error as Error)?.message ?? error));
}

/** A unified diff's lines (the server's, for a cell this page cannot see). */
export function parseUnified(diff: string): IDiffLine[] {
  const out: IDiffLine[] = [];
  for (const line of diff.split('\n')) {
    if (/^(---|\+\+\+|@@)/.test(line) || line === '') {
      continue;
    }
    const op = line[0] as IDiffLine['op'];
    if (op === ' ' || op === '-' || op === '+') {
      out.push({ op, text: line.slice(1) });
    }
  }
  return out;
}

/** The tool calls whose step card an op (or its approval) joins. */
const CALL_OF_OP: Record<string, string[]> = {
  replace_source: ['edit_cell'],
  run_cell: ['edit_cell', 'run_cell'],
  insert_cell: ['insert_cell'],
  delete_cell: ['delete_cell'],
  kernel_eval: ['run_code']
};

export class AgentOps {
  /** approval cards waiting for a click */
  private _pending = new Map<
    ICard,
    { turn: string; request: IApprovalRequest }
  >();
  /** the approval card of each approved op id (the op's card when it comes) */
  private _cards = new Map<string, ICard>();
  readonly gate = new ApprovalGate();

  constructor(private readonly _host: IOpHost) {}

  notebook(): ISharedNotebook | null {
    const panel = this._host.panel;
    return panel && !panel.isDisposed
      ? (panel.content.model?.sharedModel ?? null)
      : null;
  }

  // -- approvals -------------------------------------------------------------------------

  /** The server asks before a step: show its card with Approve / Reject. */
  ask(request: IApprovalRequest): void {
    const turn = this._host.turnFor(request.turn);
    const first = request.ops[0];
    const nb = this.notebook();
    let diff: IDiffLine[] | undefined;
    let code = request.code;
    const args = first.args as Record<string, string>;
    try {
      if (first.name === 'replace_source' && nb) {
        diff = lineDiff(getCell(nb, args.cell_id).getSource(), args.source);
      } else if (first.name === 'delete_cell' && nb) {
        diff = lineDiff(getCell(nb, args.cell_id).getSource(), '');
      } else if (first.name === 'insert_cell') {
        diff = lineDiff('', args.source);
      } else if (first.name === 'run_cell' && nb) {
        code = getCell(nb, args.cell_id).getSource();
      }
    } catch {
      diff = undefined; // a cell this page does not have: the server's diff
    }
    if (!diff && request.diff) {
      diff = parseUnified(request.diff);
    }
    const step = turn ? openStep(turn, first.name) : undefined;
    const card =
      step ??
      addCard(turn, {
        tool: first.name,
        title: request.what,
        args: { ...first.args }
      });
    card.what = request.what;
    card.why = request.why;
    card.code = code;
    card.diff = diff ?? card.diff;
    card.approval = 'pending';
    this._pending.set(card, { turn: request.turn, request });
    this._host.changed();
  }

  /** The user's answer on a card waiting for approval. */
  decide(card: ICard, approve: boolean): void {
    const pending = this._pending.get(card);
    if (!pending) {
      return;
    }
    this._pending.delete(card);
    card.approval = approve ? 'approved' : 'rejected';
    if (approve) {
      this.gate.approve(pending.request.ops);
      for (const op of pending.request.ops) {
        this._cards.set(op.op, card);
      }
    } else {
      card.result = { ok: false, text: 'rejected: not done' };
    }
    this._host.reply(approval(pending.request, approve));
    this._host.changed();
  }

  /**
   * The approvals a turn (or, with null, any turn) waits on end: the user stopped it, or
   * it ended. Nothing is sent: the server ends the waiting itself.
   */
  settle(turnId: string | null, how: 'declined' | 'expired'): void {
    for (const [card, pending] of [...this._pending]) {
      if (turnId !== null && pending.turn !== turnId) {
        continue;
      }
      this._pending.delete(card);
      card.approval = how === 'declined' ? 'rejected' : 'expired';
      card.result = {
        ok: false,
        text:
          how === 'declined'
            ? 'stopped: not done'
            : 'expired: the agent no longer waits for it'
      };
    }
    if (turnId === null) {
      this.gate.clear();
      this._cards.clear();
    }
  }

  // -- ops -------------------------------------------------------------------------------

  async handle(op: Op): Promise<void> {
    const host = this._host;
    const panel = host.panel;
    const nb = this.notebook();
    try {
      const turn = host.turnFor(op.turn);
      const fixCell = turn?.mode === 'fix' ? turn.cellId : undefined;
      const why = needsApproval(op, host.policies, fixCell);
      if (why && !this.gate.take(op)) {
        throw new Error(`${REFUSED} (${why})`);
      }
      if (!panel || !nb) {
        throw new Error('the notebook is closed');
      }
      switch (op.name) {
        case 'list_cells': {
          const t0 = performance.now();
          const cells = listCells(nb);
          host.reply(opOk<'list_cells'>(op.op, { cells }));
          recordTiming({
            op: 'list_cells',
            ms: performance.now() - t0,
            cells: cells.length
          });
          return;
        }
        case 'kernel_eval':
          if (op.helper) {
            const { code, timeout } = op.args;
            if (turn) {
              addHelperRun(turn, op.purpose || 'helper code');
              host.changed();
            }
            host.reply(
              opOk(op.op, await kernelEval(panel.sessionContext, code, timeout))
            );
            return;
          }
          await this._visible(op, panel, nb, turn);
          return;
        default:
          await this._visible(op, panel, nb, turn);
      }
    } catch (error) {
      host.reply(opFailed(op.op, message(error)));
    }
  }

  /** Edits, runs, model code: their card (the approval's, or a new one), then the work. */
  private async _visible(
    op: VisibleOp,
    panel: NotebookPanel,
    nb: ISharedNotebook,
    turn: ITurn | undefined
  ) {
    const host = this._host;
    let card = this._cards.get(op.op);
    this._cards.delete(op.op);
    if (
      !card &&
      op.name === 'replace_source' &&
      getCell(nb, op.args.cell_id).getSource() === op.args.source
    ) {
      host.reply(opOk(op.op, {})); // a cell kept as it was (a fix that put it back)
      return;
    }
    if (card) {
      card.ops = card.ops?.includes(op.name)
        ? card.ops
        : [...(card.ops ?? []), op.name];
    } else {
      card = addCard(turn, this._describe(op, nb));
    }
    if (turn && op.name !== 'kernel_eval') {
      turn.mutated = true;
    }
    host.changed();
    try {
      host.reply(opOk(op.op, await this._perform(op, panel, nb, card)));
    } catch (error) {
      card.result = { ok: false, text: message(error) };
      throw error;
    } finally {
      card.running = false;
      host.changed();
    }
  }

  private _describe(op: VisibleOp, nb: ISharedNotebook): Omit<ICard, 'id'> {
    const label = (id: string) => `cell ${indexOf(nb, id) + 1}`;
    const args = { ...op.args } as Record<string, unknown>;
    switch (op.name) {
      case 'replace_source':
        return {
          tool: op.name,
          title: `edit ${label(op.args.cell_id)}`,
          args,
          diff: lineDiff(
            getCell(nb, op.args.cell_id).getSource(),
            op.args.source
          )
        };
      case 'insert_cell':
        return {
          tool: op.name,
          title: `insert a ${op.args.cell_type} cell at position ${op.args.index + 1}`,
          args,
          diff: lineDiff('', op.args.source)
        };
      case 'delete_cell':
        return {
          tool: op.name,
          title: `delete ${label(op.args.cell_id)}`,
          args,
          diff: lineDiff(getCell(nb, op.args.cell_id).getSource(), '')
        };
      case 'run_cell':
        return { tool: op.name, title: `run ${label(op.args.cell_id)}`, args };
      case 'kernel_eval':
        return {
          tool: op.name,
          title: 'run code in the kernel',
          args,
          code: op.args.code
        };
    }
  }

  private async _perform(
    op: VisibleOp,
    panel: NotebookPanel,
    nb: ISharedNotebook,
    card: ICard
  ): Promise<OpValue> {
    const host = this._host;
    switch (op.name) {
      case 'replace_source': {
        const before = replaceSource(nb, op.args.cell_id, op.args.source);
        card.diff = lineDiff(before, op.args.source);
        card.result = { ok: true, text: 'edited' };
        return {};
      }
      case 'insert_cell': {
        const { index, source, cell_type } = op.args;
        const id = insertCell(nb, index, source, cell_type);
        card.result = { ok: true, text: `inserted cell ${id}` };
        return { cell_id: id };
      }
      case 'delete_cell':
        deleteCell(nb, op.args.cell_id);
        card.result = { ok: true, text: 'deleted' };
        return {};
      case 'run_cell': {
        card.running = true;
        host.turnFor(op.turn)?.ran.push(op.args.cell_id);
        host.changed();
        const value = await runCell(panel, op.args.cell_id, op.args.timeout);
        const e = value.error;
        card.result = {
          ok: !e && !value.timed_out,
          text: e
            ? `${e.ename}: ${e.evalue}`
            : `ran [${value.execution_count ?? ' '}]`
        };
        host.cellRan(panel, op.args.cell_id, !!e);
        return value;
      }
      case 'kernel_eval': {
        card.running = true;
        host.changed();
        const { code, timeout } = op.args;
        const value = await kernelEval(panel.sessionContext, code, timeout);
        card.result = {
          ok: true,
          text: value.stdout.trim() || 'ran (no output)'
        };
        return value;
      }
    }
  }
}

/** The latest step card of a tool call still waiting for its result, for op `name`. */
function openStep(turn: ITurn, name: string): ICard | undefined {
  const calls = CALL_OF_OP[name] ?? [];
  for (let i = turn.parts.length - 1; i >= 0; i--) {
    const part = turn.parts[i];
    if (part.kind === 'card') {
      const card = part.card;
      if (card.call && !card.answered && calls.includes(card.call)) {
        return card;
      }
      return undefined; // only the last card can be the step's
    }
  }
  return undefined;
}
