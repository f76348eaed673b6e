/**
 * One notebook's chat in the panel: its socket, its turns, its policies and model, and the
 * undo snapshot of its last agent turn. The chat itself lives on the server (it outlasts
 * reloads and restarts): `ready` brings its stored turns, each finished turn goes back as
 * `save_turn`. Agent ops and approval cards are {@link AgentOps}'.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { AgentOps } from './agentOps';
import { ChipState, chipState, contextOf } from './context';
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
  IChatSummary,
  IPolicies,
  IReady,
  Mode,
  ServerMessage,
  cancel,
  chat,
  claimProposal,
  fix,
  hello,
  oneLine,
  opFailed,
  policy,
  saveTurn,
  setModel
} from './protocol';
import { ProposalClaims, runProposalOnce } from './proposalRun';
import { runCell } from './runner';
import type { IDevstralSettings } from './settings';
import { DevstralSocket } from './socket';
import { turnFromRecord, turnRecord } from './records';
import {
  ICard,
  IProposal,
  ITurn,
  applyEvent,
  applyOtherEvent,
  finishTurn,
  newTurn
} from './turns';

export type Connection = 'idle' | 'connecting' | 'ready' | 'closed';

export const CONTINUE_TEXT = 'Continue from where you stopped.';

export interface IConversationHooks {
  /** an agent op ran a cell (for the Fix buttons) */
  cellRan(panel: NotebookPanel, cellId: string, failed: boolean): void;
}

export class Conversation {
  /** the server's id of the chat shown ("" until the first `ready`) */
  id = '';
  readonly changed = new Signal<this, void>(this);
  turns: ITurn[] = [];
  /** the notebook's chats, newest first */
  chats: IChatSummary[] = [];
  connection: Connection = 'idle';
  backend = '';
  model = '';
  /** why no turn can run (no model configured...), from the server */
  problem: string | null = null;
  error: string | null = null;
  /** the composer's unsent text */
  draft = '';
  mode: Mode;
  policies: IPolicies;
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
  private _defaults: IPolicies;
  private _watching: NotebookPanel | null = null;
  private _claims = new ProposalClaims();

  constructor(
    public path: string,
    public panel: NotebookPanel | null,
    serverSettings: ServerConnection.ISettings,
    defaults: IDevstralSettings,
    private readonly _hooks: IConversationHooks
  ) {
    this.mode = defaults.defaultMode;
    this._defaults = { edit: defaults.editPolicy, run: defaults.runPolicy };
    this.policies = { ...this._defaults };
    this._socket = new DevstralSocket(serverSettings, {
      message: msg => this._onMessage(msg),
      invalid: (raw, error) => this._onInvalid(raw, error.message),
      closed: info => this._onClosed(info)
    });
    const self = this; // the ops read the live pin and policies
    this._ops = new AgentOps({
      get panel() {
        return self.panel;
      },
      get policies() {
        return self.policies;
      },
      turnFor: id => this._turn(id) ?? this.running ?? undefined,
      reply: msg => this._reply(msg),
      changed: () => this._emit(),
      cellRan: (panel, cellId, failed) => _hooks.cellRan(panel, cellId, failed)
    });
    this._watch(panel);
  }

  // -- state the panel reads ---------------------------------------------------------------

  get running(): ITurn | null {
    const last = this.turns[this.turns.length - 1];
    return last && !last.done ? last : null;
  }

  get canUndo(): boolean {
    return !!this._undo && this._undo.turn.mutated && !this.running;
  }

  /** The last model call's prompt size as the backend reported it (0: none yet). */
  get lastPrompt(): number {
    for (let i = this.turns.length - 1; i >= 0; i--) {
      const usage = this.turns[i].usage;
      if (usage?.last_prompt) {
        return usage.last_prompt;
      }
    }
    return 0;
  }

  /** What each context chip would send now (available or not, and its label). */
  get chipStates(): Record<Chip, ChipState> {
    return chipState(this.panel);
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
      const ready = await this._socket.open(this._hello(this.id));
      this._applyReady(ready);
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
      chat(turn.id, text, mode, contextOf(this.panel, this.chips))
    );
  }

  /** An answer cut off at the reply limit: ask for the rest. */
  continueTurn(turn: ITurn): Promise<void> {
    const mode = turn.mode === 'agent' ? 'agent' : 'ask';
    const next = newTurn(CONTINUE_TEXT, mode);
    return this._start(next, mode === 'agent', () =>
      chat(next.id, CONTINUE_TEXT, mode, contextOf(this.panel, this.chips))
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

  /** "New chat": the notebook's chats stay in the history list. */
  async newChat(): Promise<void> {
    await this._switch({ conversation: '', new: true });
  }

  /** Open one of the notebook's earlier chats. */
  async openChat(id: string): Promise<void> {
    if (id !== this.id) {
      await this._switch({ conversation: id, new: false });
    }
  }

  /** A "runs, review" fix: the user applies the offered edit (then runs the cell). */
  applyOffer(turn: ITurn): boolean {
    const nb = this._ops.notebook();
    if (!turn.offer || !turn.cellId || !nb) {
      return false;
    }
    try {
      replaceSource(nb, turn.cellId, turn.offer.source);
    } catch (error) {
      this.error = oneLine(String((error as Error).message ?? error));
      this._emit();
      return false;
    }
    turn.offer.applied = true;
    this._store(turn);
    this._emit();
    return true;
  }

  /**
   * A proposal's "Run it": the user's click approves it. The server's stored chat is
   * claimed first (once, whichever tab asks); only then the cell gets that source and runs
   * once (see proposalRun.ts). Refused for any proposal that has a state.
   */
  async runProposal(turn: ITurn, proposal: IProposal): Promise<void> {
    const nb = this._ops.notebook();
    const panel = this.panel;
    const cellId = turn.cellId;
    if (!cellId || !nb || !panel || proposal.state !== undefined) {
      return;
    }
    await runProposalOnce(turn, proposal, {
      claim: async (turnId, index) => {
        if (!(await this.connect())) {
          throw new Error(this.error ?? 'not connected');
        }
        const answer = this._claims.expect(turnId, index);
        this._socket.send(claimProposal(turnId, index));
        return answer;
      },
      run: async source => {
        replaceSource(nb, cellId, source);
        const value = await runCell(panel, cellId, 60);
        const e = value.error;
        this._hooks.cellRan(panel, cellId, !!e);
        return e
          ? { failed: true, result: `${e.ename}: ${e.evalue}` }
          : { failed: false, result: `ran [${value.execution_count ?? ' '}]` };
      },
      changed: () => this._emit(),
      store: () => this._store(turn)
    });
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
    this._store(this._undo.turn);
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

  /** New preferences: the mode of an unused chat, the policies of new notebooks. */
  applyDefaults(defaults: IDevstralSettings): void {
    this._defaults = { edit: defaults.editPolicy, run: defaults.runPolicy };
    if (this.turns.length === 0) {
      this.mode = defaults.defaultMode;
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

  /** The notebook's policies (remembered on the server with its chats). */
  setPolicies(policies: Partial<IPolicies>): void {
    this.policies = { ...this.policies, ...policies };
    this._reply(policy(policies));
    this._emit();
  }

  /** Switch this chat's model (one of `GET devstral/models`). */
  async chooseModel(backend: string, model: string): Promise<void> {
    if (this.running || !(await this.connect())) {
      return;
    }
    this._reply(setModel(backend, model));
  }

  dismissError(): void {
    this.error = null;
    this._emit();
  }

  pin(panel: NotebookPanel | null): void {
    this.panel = panel;
    this._watch(panel);
    this._emit();
  }

  dispose(): void {
    this._ops.settle(null, 'expired');
    this._claims.failAll('the panel closed');
    this._disposed = true;
    this._socket.close();
    Signal.clearData(this);
  }

  // -- turns ---------------------------------------------------------------------------------

  private _hello(conversation: string, fresh = false) {
    const id = this.panel?.content.model?.getMetadata('id');
    return hello(conversation, this.path, {
      ...(typeof id === 'string' ? { notebook_id: id } : {}),
      ...(fresh ? { new: true } : {}),
      policies: this._defaults
    });
  }

  private async _switch(to: { conversation: string; new: boolean }) {
    if (this.running) {
      return;
    }
    if (!this._socket.isReady) {
      this.id = to.conversation;
      if (!(await this.connect()) || !to.new) {
        return;
      }
    }
    try {
      this._socket.send(this._hello(to.conversation, to.new));
    } catch (error) {
      this.error = oneLine(String((error as Error).message ?? error));
      this._emit();
    }
  }

  private _applyReady(ready: IReady): void {
    this._ops.settle(null, 'expired');
    this._claims.failAll('the chat was opened again');
    if (ready.conversation !== this.id) {
      this._undo = null;
    }
    this.id = ready.conversation;
    this.backend = ready.backend;
    this.model = ready.model;
    this.problem = ready.problem ?? null;
    this.policies = { ...this.policies, ...ready.policies };
    this.chats = ready.chats ?? [];
    this.turns = (ready.turns ?? [])
      .map(turnFromRecord)
      .filter((t): t is ITurn => t !== null);
  }

  private async _start(
    turn: ITurn,
    snapshotFirst: boolean,
    message: () => ClientMessage
  ): Promise<void> {
    if (this.running) {
      return;
    }
    this.error = null;
    if (!(await this.connect())) {
      this.turns.push(turn);
      this._finish(turn, 'disconnected', this.error ?? 'not connected');
      return;
    }
    const nb = this._ops.notebook();
    if (snapshotFirst && nb) {
      this._undo = { snap: snapshot(nb), turn };
    }
    this.turns.push(turn);
    this._emit();
    try {
      this._socket.send(message());
      turn.status = 'waiting for the model';
    } catch (error) {
      this._finish(turn, 'disconnected', String(error));
    }
    this._emit();
  }

  private _finish(turn: ITurn, reason: string, message = ''): void {
    finishTurn(turn, reason, message);
    this._ops.settle(turn.id, 'expired');
    this._emit();
  }

  /** Keep the panel's view of a finished turn with the chat on the server. */
  private _store(turn: ITurn): void {
    if (turn.done && this._socket.isReady) {
      this._reply(saveTurn(turn.id, turnRecord(turn)));
    }
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
            this._ops.gate.clear();
            this._store(turn);
            this._refreshChats(turn);
          }
        }
        break;
      }
      case 'approval_request':
        this._ops.ask(msg);
        break;
      case 'claim_result':
        this._claims.settle(msg);
        break;
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
        this._applyReady(msg);
        break;
      case 'model':
        this.backend = msg.backend;
        this.model = msg.model;
        this.problem = msg.problem ?? null;
        break;
    }
    this._emit();
  }

  /** The history list shows this chat's title and size without asking the server. */
  private _refreshChats(turn: ITurn): void {
    const own = this.chats.find(c => c.id === this.id);
    if (own) {
      own.turns = this.turns.length;
      own.title =
        own.title && own.title !== 'New chat' ? own.title : turn.request;
      own.updated = Date.now() / 1000;
    }
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
    this._claims.failAll('the connection closed');
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
      console.warn('Devstral: could not send to the server:', error);
    }
  }

  /** Re-render when the active cell or its selection changes (the chips show them). */
  private _watch(panel: NotebookPanel | null): void {
    if (panel === this._watching) {
      return;
    }
    if (this._watching && !this._watching.isDisposed) {
      this._watching.content.activeCellChanged.disconnect(this._onActive, this);
    }
    this._watching = panel;
    if (panel) {
      panel.content.activeCellChanged.connect(this._onActive, this);
    }
    this._onActive();
  }

  private _selections: ISignal<unknown, unknown> | null = null;

  private _onActive(): void {
    const model = this._watching?.content.activeCell?.model as unknown as
      { selections?: { changed?: ISignal<unknown, unknown> } } | undefined;
    const signal = model?.selections?.changed ?? null;
    if (signal !== this._selections) {
      this._selections?.disconnect(this._emitSelf);
      signal?.connect(this._emitSelf);
      this._selections = signal;
    }
    this._emit();
  }

  private _emitSelf = (): void => this._emit();

  private _emit(): void {
    if (!this._disposed) {
      this.changed.emit();
    }
  }
}
