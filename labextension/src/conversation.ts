/**
 * One notebook's conversation: its socket, its turns, its preferences, and the undo
 * snapshot of its last agent turn. Agent ops are carried out by {@link AgentOps}.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { ServerConnection } from '@jupyterlab/services';
import { UUID } from '@lumino/coreutils';
import { Signal } from '@lumino/signaling';

import { AgentOps } from './agentOps';
import {
  INotebookSnapshot,
  errorFromOutputs,
  insertCell,
  replaceSource,
  restore,
  snapshot
} from './notebookOps';
import {
  Chip,
  ClientMessage,
  IChatContext,
  Mode,
  ServerMessage,
  cancel,
  chat,
  fix,
  oneLine,
  opFailed
} from './protocol';
import type { EditPolicy, IDevstralSettings, RunPolicy } from './settings';
import { DevstralSocket } from './socket';
import {
  ICard,
  ITurn,
  applyEvent,
  applyOtherEvent,
  finishTurn,
  newTurn
} from './turns';

export type Connection = 'idle' | 'connecting' | 'ready' | 'closed';

export interface IConversationHooks {
  /** an agent op ran a cell (for the Fix buttons) */
  cellRan(panel: NotebookPanel, cellId: string, failed: boolean): void;
}

export class Conversation {
  readonly id = 'c-' + UUID.uuid4();
  readonly changed = new Signal<this, void>(this);
  readonly turns: ITurn[] = [];
  connection: Connection = 'idle';
  backend = '';
  model = '';
  error: string | null = null;
  /** the composer's unsent text */
  draft = '';
  mode: Mode;
  editPolicy: EditPolicy;
  runPolicy: RunPolicy;
  chips: Record<Chip, boolean> = {
    notebook: true,
    active_cell: true,
    selection: true,
    errors: true
  };

  private _socket: DevstralSocket;
  private _ops: AgentOps;
  private _undo: { snap: INotebookSnapshot; turn: ITurn } | null = null;
  private _timed = new Set<string>();
  private _disposed = false;

  constructor(
    public path: string,
    public panel: NotebookPanel | null,
    serverSettings: ServerConnection.ISettings,
    defaults: IDevstralSettings,
    private readonly _hooks: IConversationHooks
  ) {
    this.mode = defaults.defaultMode;
    this.editPolicy = defaults.editPolicy;
    this.runPolicy = defaults.runPolicy;
    this._socket = new DevstralSocket(this.id, serverSettings, {
      message: msg => this._onMessage(msg),
      invalid: (raw, error) => this._onInvalid(raw, error.message),
      closed: info => this._onClosed(info)
    });
    const self = this; // the ops read the live pin and policies
    this._ops = new AgentOps({
      get panel() {
        return self.panel;
      },
      get editPolicy() {
        return self.editPolicy;
      },
      get runPolicy() {
        return self.runPolicy;
      },
      turnFor: id => this._turn(id) ?? this.running ?? undefined,
      reply: msg => this._reply(msg),
      changed: () => this._emit(),
      cellRan: (panel, cellId, failed) => _hooks.cellRan(panel, cellId, failed)
    });
  }

  // -- state the panel reads ---------------------------------------------------------------

  get running(): ITurn | null {
    const last = this.turns[this.turns.length - 1];
    return last && !last.done ? last : null;
  }

  get canUndo(): boolean {
    return !!this._undo && this._undo.turn.mutated && !this.running;
  }

  /** Turns whose first text event is now on screen and not yet timed (once each). */
  takeRenderTimings(): { turn: string; ts: number | undefined }[] {
    const out: { turn: string; ts: number | undefined }[] = [];
    for (const turn of this.turns) {
      if (turn.firstText && !this._timed.has(turn.id)) {
        this._timed.add(turn.id);
        out.push({ turn: turn.id, ts: turn.firstText.ts });
      }
    }
    return out;
  }

  // -- user actions --------------------------------------------------------------------------

  /** Open the socket (if not open) and wait for `ready`; false (and a notice) on failure. */
  async connect(): Promise<boolean> {
    if (this._socket.isReady) {
      return true;
    }
    this.connection = 'connecting';
    this._emit();
    try {
      const ready = await this._socket.open(this.path);
      this.backend = ready.backend;
      this.model = ready.model;
      this.connection = 'ready';
      this.error = null;
      return true;
    } catch (error) {
      this.connection = 'closed';
      this.error = oneLine(String((error as Error).message ?? error));
      return false;
    } finally {
      this._emit();
    }
  }

  send(text: string): Promise<void> {
    const mode = this.mode;
    const turn = newTurn(text, mode);
    return this._start(turn, mode === 'agent', () =>
      chat(turn.id, text, mode, this._context())
    );
  }

  fix(cellId: string): Promise<void> {
    const nb = this._ops.notebook();
    const index = nb ? nb.cells.findIndex(c => c.getId() === cellId) : -1;
    const label = index >= 0 ? `cell ${index + 1}` : `cell ${cellId}`;
    const turn = newTurn(`Fix with Devstral: ${label}`, 'fix', cellId);
    return this._start(turn, true, () => fix(turn.id, cellId));
  }

  /** Stop the running turn: the server cancels it and ends it with `stopped`. */
  stop(): void {
    const turn = this.running;
    if (!turn) {
      return;
    }
    this._ops.settle(turn.id, 'declined');
    turn.status = 'stopping';
    try {
      this._socket.send(cancel(turn.id));
    } catch {
      this._finish(turn, 'cancelled', 'stopped by the user');
    }
    this._emit();
  }

  decide(card: ICard, approve: boolean): void {
    this._ops.decide(card, approve);
  }

  /** Put the pinned notebook back as it was before the last agent turn (one undo step). */
  undoTurn(): boolean {
    const nb = this._ops.notebook();
    if (!this._undo || !nb || this.running) {
      return false;
    }
    const { snap, turn } = this._undo;
    restore(nb, snap);
    if (this.panel) {
      for (const id of new Set(turn.ran)) {
        const cell = snap.cells.find(c => c.id === id);
        if (cell?.cell_type === 'code') {
          this._hooks.cellRan(this.panel, id, !!errorFromOutputs(cell.outputs));
        }
      }
    }
    this._undo.turn.stopMessage =
      'undone: the notebook is back as it was before this turn';
    this._undo = null;
    this._emit();
    return true;
  }

  /** A code block's "Insert below": a new code cell under the pinned notebook's active cell. */
  insertBelow(code: string): void {
    const nb = this._ops.notebook();
    const notebook = this.panel?.content;
    if (nb && notebook) {
      const at = notebook.activeCellIndex + 1;
      insertCell(nb, at, code, 'code');
      notebook.activeCellIndex = at;
    }
  }

  /** A code block's "Replace cell": the pinned notebook's active cell gets this source. */
  replaceActive(code: string): void {
    const nb = this._ops.notebook();
    const active = this.panel?.content.activeCell;
    if (nb && active) {
      replaceSource(nb, active.model.sharedModel.getId(), code);
    }
  }

  /** New preferences, for a conversation the user has not used yet. */
  applyDefaults(defaults: IDevstralSettings): void {
    if (this.turns.length === 0) {
      this.mode = defaults.defaultMode;
      this.editPolicy = defaults.editPolicy;
      this.runPolicy = defaults.runPolicy;
      this._emit();
    }
  }

  setMode(mode: Mode): void {
    this.mode = mode;
    this._emit();
  }

  setChip(chip: Chip, on: boolean): void {
    this.chips = { ...this.chips, [chip]: on };
    this._emit();
  }

  setPolicies(policies: { edit?: EditPolicy; run?: RunPolicy }): void {
    this.editPolicy = policies.edit ?? this.editPolicy;
    this.runPolicy = policies.run ?? this.runPolicy;
    this._emit();
  }

  dismissError(): void {
    this.error = null;
    this._emit();
  }

  pin(panel: NotebookPanel | null): void {
    this.panel = panel;
    this._emit();
  }

  dispose(): void {
    this._ops.settle(null, 'expired');
    this._disposed = true;
    this._socket.close();
    Signal.clearData(this);
  }

  // -- turns ---------------------------------------------------------------------------------

  private async _start(
    turn: ITurn,
    snapshotFirst: boolean,
    message: () => ClientMessage
  ): Promise<void> {
    if (this.running) {
      return;
    }
    const nb = this._ops.notebook();
    if (snapshotFirst && nb) {
      this._undo = { snap: snapshot(nb), turn };
    }
    this.error = null;
    this.turns.push(turn);
    this._emit();
    if (!(await this.connect())) {
      this._finish(turn, 'disconnected', this.error ?? 'not connected');
      return;
    }
    try {
      this._socket.send(message());
      turn.status = 'waiting for the model';
    } catch (error) {
      this._finish(turn, 'disconnected', String(error));
    }
    this._emit();
  }

  private _context(): IChatContext {
    const active = this.panel?.content.activeCell ?? null;
    let selection = '';
    const editor = active?.editor;
    if (editor && this.chips.selection) {
      const range = editor.getSelection();
      const a = editor.getOffsetAt(range.start);
      const b = editor.getOffsetAt(range.end);
      selection = editor.model.sharedModel
        .getSource()
        .slice(Math.min(a, b), Math.max(a, b));
    }
    return {
      active_cell_id: active ? active.model.sharedModel.getId() : null,
      selection,
      chips: { ...this.chips }
    };
  }

  private _finish(turn: ITurn, reason: string, message = ''): void {
    finishTurn(turn, reason, message);
    this._ops.settle(turn.id, 'expired');
    this._emit();
  }

  private _turn(id: string): ITurn | undefined {
    return this.turns.find(turn => turn.id === id);
  }

  // -- from the server -----------------------------------------------------------------------

  private _onMessage(msg: ServerMessage): void {
    switch (msg.type) {
      case 'event': {
        const turn = this._turn(msg.turn);
        if (!turn || turn.done) {
          return;
        }
        if (msg.unknown) {
          applyOtherEvent(turn, msg.kind, msg.data);
        } else {
          applyEvent(turn, msg);
          if (turn.done) {
            this._ops.settle(turn.id, 'expired');
          }
        }
        break;
      }
      case 'op':
        void this._ops.handle(msg);
        break;
      case 'error': {
        this.error = oneLine(msg.message);
        const turn = msg.turn ? this._turn(msg.turn) : undefined;
        if (turn && !turn.done && turn.parts.length === 0) {
          this._finish(turn, 'error', msg.message); // the turn never started
        }
        break;
      }
      case 'ready':
        this.backend = msg.backend;
        this.model = msg.model;
        break;
    }
    this._emit();
  }

  private _onInvalid(raw: unknown, problem: string): void {
    console.warn(
      'Devstral: ignored a message that breaks the protocol:',
      problem,
      raw
    );
    const msg = raw as { type?: unknown; op?: unknown } | undefined;
    if (msg?.type === 'op' && typeof msg.op === 'string') {
      this._reply(opFailed(msg.op, problem)); // never leave the agent waiting
    }
  }

  private _onClosed(info: { code: number; ready: boolean }): void {
    if (!info.ready || this._disposed) {
      return;
    }
    this.connection = 'closed';
    const turn = this.running;
    if (turn) {
      this._finish(turn, 'disconnected', 'the connection closed');
    }
    this.error =
      `the connection to the Devstral server closed (code ${info.code}); ` +
      'sending again reconnects';
    this._emit();
  }

  private _reply(msg: ClientMessage): void {
    try {
      this._socket.send(msg);
    } catch (error) {
      console.warn('Devstral: could not answer an op:', error);
    }
  }

  private _emit(): void {
    if (!this._disposed) {
      this.changed.emit();
    }
  }
}
