/**
 * The browser side of agent ops: carry out each `op` by cell id on the pinned notebook,
 * show edits and runs as cards (asking first when the policy says so), answer `op_result`.
 */
import type { ISharedNotebook } from '@jupyter/ydoc';
import type { NotebookPanel } from '@jupyterlab/notebook';

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
  Op,
  OpValue,
  oneLine,
  opFailed,
  opOk
} from './protocol';
import { kernelEval, runCell } from './runner';
import type { EditPolicy, RunPolicy } from './settings';
import { ICard, ITurn, addCard } from './turns';
import { recordTiming } from './timings';

export const DECLINED_EDIT = 'the user declined this edit';
export const DECLINED_RUN = 'the user declined to run this cell';

type VisibleOp = Exclude<Op, { name: 'list_cells' | 'kernel_eval' }>;

/** What the ops need from their conversation. */
export interface IOpHost {
  readonly panel: NotebookPanel | null;
  readonly editPolicy: EditPolicy;
  readonly runPolicy: RunPolicy;
  turnFor(id: string): ITurn | undefined;
  reply(msg: ClientMessage): void;
  changed(): void;
  /** an op ran a cell (for the Fix buttons) */
  cellRan(panel: NotebookPanel, cellId: string, failed: boolean): void;
}

function message(error: unknown): string {
  return oneLine(String((error as Error)?.message ?? error));
}

export class AgentOps {
  private _approvals = new Map<
    ICard,
    { turn: string; resolve: (ok: boolean) => void }
  >();

  constructor(private readonly _host: IOpHost) {}

  /** The user's answer on a card waiting for approval. */
  decide(card: ICard, approve: boolean): void {
    const pending = this._approvals.get(card);
    if (pending) {
      this._approvals.delete(card);
      card.approval = approve ? 'approved' : 'rejected';
      pending.resolve(approve);
      this._host.changed();
    }
  }

  /**
   * Settle the approvals a turn (or, with null, any turn) waits on: declined (the user
   * stopped the turn) or expired (the turn ended, or the server sent a newer op of that
   * turn and so no longer waits for them: ops of a turn come one at a time).
   */
  settle(turnId: string | null, how: 'declined' | 'expired'): void {
    for (const [card, pending] of [...this._approvals]) {
      if (turnId !== null && pending.turn !== turnId) {
        continue;
      }
      if (how === 'declined') {
        this.decide(card, false);
      } else {
        this._approvals.delete(card);
        card.approval = 'expired';
        card.result = {
          ok: false,
          text: 'expired: the agent no longer waits for it'
        };
        pending.resolve(false);
      }
    }
  }

  notebook(): ISharedNotebook | null {
    const panel = this._host.panel;
    return panel && !panel.isDisposed
      ? (panel.content.model?.sharedModel ?? null)
      : null;
  }

  async handle(op: Op): Promise<void> {
    this.settle(op.turn, 'expired');
    const host = this._host;
    const panel = host.panel;
    const nb = this.notebook();
    try {
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
        case 'kernel_eval': {
          const { code, timeout } = op.args;
          host.reply(
            opOk(op.op, await kernelEval(panel.sessionContext, code, timeout))
          );
          return;
        }
        default:
          await this._visible(op, panel, nb);
      }
    } catch (error) {
      host.reply(opFailed(op.op, message(error)));
    }
  }

  /** Edits and runs: a card, the policy's approval, then the work. */
  private async _visible(
    op: VisibleOp,
    panel: NotebookPanel,
    nb: ISharedNotebook
  ) {
    const host = this._host;
    const turn = host.turnFor(op.turn);
    const label = (id: string) => `cell ${indexOf(nb, id) + 1}`;
    let title: string;
    let diff: IDiffLine[] | undefined;
    let ask: boolean;
    switch (op.name) {
      case 'replace_source':
        title = `edit ${label(op.args.cell_id)}`;
        diff = lineDiff(
          getCell(nb, op.args.cell_id).getSource(),
          op.args.source
        );
        ask = host.editPolicy === 'ask';
        break;
      case 'insert_cell':
        title = `insert a ${op.args.cell_type} cell at position ${op.args.index + 1}`;
        diff = lineDiff('', op.args.source);
        ask = host.editPolicy === 'ask';
        break;
      case 'delete_cell':
        title = `delete ${label(op.args.cell_id)}`;
        diff = lineDiff(getCell(nb, op.args.cell_id).getSource(), '');
        ask = true; // deletes always ask
        break;
      case 'run_cell':
        title = `run ${label(op.args.cell_id)}`;
        // "Fix with Devstral" on a cell is consent to run that cell
        ask =
          host.runPolicy === 'ask' &&
          !(turn?.mode === 'fix' && turn.cellId === op.args.cell_id);
        break;
    }
    const args = { ...op.args } as Record<string, unknown>;
    const card = addCard(turn, { tool: op.name, title, args, diff });
    host.changed();
    if (ask) {
      if (!turn) {
        throw new Error('no turn of this panel to ask approval in');
      }
      const approved = await this._approve(turn.id, card);
      if (card.approval === 'expired') {
        return; // nobody waits for an answer any more
      }
      if (!approved) {
        const why = op.name === 'run_cell' ? DECLINED_RUN : DECLINED_EDIT;
        card.result = { ok: false, text: why };
        host.changed();
        host.reply(opFailed(op.op, why));
        return;
      }
    }
    if (turn) {
      turn.mutated = true;
    }
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

  private _approve(turnId: string, card: ICard): Promise<boolean> {
    card.approval = 'pending';
    const answer = new Promise<boolean>(resolve => {
      this._approvals.set(card, { turn: turnId, resolve });
    });
    this._host.changed();
    return answer;
  }

  private async _perform(
    op: VisibleOp,
    panel: NotebookPanel,
    nb: ISharedNotebook,
    card: ICard
  ): Promise<OpValue> {
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
        const host = this._host;
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
    }
  }
}
