/**
 * The sidebar's wire: JSON messages on one WebSocket per conversation.
 *
 * The TypeScript twin of `jupyter_devstral/server/protocol.py`; both test suites load
 * `tests/fixtures/protocol.json` so the two cannot drift.
 */
import type * as nbformat from '@jupyterlab/nbformat';

export const PROTOCOL_VERSION = 2;

export const CLIENT_TYPES = [
  'hello',
  'chat',
  'fix',
  'cancel',
  'op_result',
  'approval',
  'policy',
  'set_model',
  'save_turn',
  'claim_proposal'
] as const;
export const SERVER_TYPES = [
  'ready',
  'model',
  'event',
  'approval_request',
  'op',
  'claim_result',
  'error'
] as const;
export const MODES = ['ask', 'agent'] as const;
export const CHIPS = [
  'notebook',
  'active_cell',
  'selection',
  'errors'
] as const;
export const POLICIES = ['ask', 'auto'] as const;
export const EVENT_KINDS = [
  'status',
  'text',
  'tool_call',
  'tool_result',
  'attempt_start',
  'attempt',
  'proposal',
  'usage',
  'sent',
  'stopped'
] as const;

/** Notebook operations the browser carries out: name -> argument names, value keys. */
export const OPS = {
  list_cells: { args: [], value: ['cells'] },
  replace_source: { args: ['cell_id', 'source'], value: [] },
  insert_cell: { args: ['index', 'source', 'cell_type'], value: ['cell_id'] },
  delete_cell: { args: ['cell_id'], value: [] },
  run_cell: {
    args: ['cell_id', 'timeout'],
    value: ['outputs', 'error', 'timed_out', 'execution_count']
  },
  kernel_eval: { args: ['code', 'timeout'], value: ['stdout'] }
} as const;
export const EDIT_OPS = [
  'replace_source',
  'insert_cell',
  'delete_cell'
] as const;

export type Mode = (typeof MODES)[number];
export type Policy = (typeof POLICIES)[number];
export interface IPolicies {
  edit: Policy;
  run: Policy;
}
export type Chip = (typeof CHIPS)[number];
export type OpName = keyof typeof OPS;
export type EventKind = (typeof EVENT_KINDS)[number];
export type CellType = 'code' | 'markdown' | 'raw';

/** A message that does not follow this protocol (the message is one line). */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

// -- browser to server -------------------------------------------------------------------

export interface IChatContext {
  active_cell_id: string | null;
  selection: string;
  chips: Record<Chip, boolean>;
}

export interface IHello {
  type: 'hello';
  version: number;
  /** the chat to open; "" for the notebook's latest */
  conversation: string;
  notebook: string;
  /** the notebook's id in its metadata, if any (finds its chats after a move) */
  notebook_id?: string;
  /** start a new chat */
  new?: boolean;
  /** the policies of a notebook that has none stored yet (the user's defaults) */
  policies?: IPolicies;
}

export interface IChat {
  type: 'chat';
  turn: string;
  text: string;
  mode: Mode;
  context: IChatContext;
}

export interface IFix {
  type: 'fix';
  turn: string;
  cell_id: string;
}

export interface ICancel {
  type: 'cancel';
  turn: string;
}

export interface ICellInfo {
  id: string;
  cell_type: CellType;
  source: string;
  outputs: nbformat.IOutput[];
  execution_count: number | null;
}

export interface IErrorInfo {
  ename: string;
  evalue: string;
  traceback: string[];
}

export interface IOpValues {
  list_cells: { cells: ICellInfo[] };
  replace_source: Record<string, never>;
  insert_cell: { cell_id: string };
  delete_cell: Record<string, never>;
  run_cell: {
    outputs: nbformat.IOutput[];
    error: IErrorInfo | null;
    timed_out: boolean;
    execution_count: number | null;
  };
  kernel_eval: { stdout: string };
}

export type OpValue = IOpValues[OpName];

export interface IOpOk {
  type: 'op_result';
  op: string;
  ok: true;
  value: OpValue;
}

export interface IOpFailed {
  type: 'op_result';
  op: string;
  ok: false;
  error: string;
}

/** One op of an approval request, as the server will send it. */
export interface IPlannedOp {
  op: string;
  name: OpName;
  args: Record<string, unknown>;
}

/** The user's click on an approval card; approved, it echoes the request's ops. */
export interface IApproval {
  type: 'approval';
  request: string;
  approved: boolean;
  ops?: IPlannedOp[];
}

export interface IPolicyMessage {
  type: 'policy';
  edit?: Policy;
  run?: Policy;
}

export interface ISetModel {
  type: 'set_model';
  backend: string;
  model: string;
}

/** The panel's view of a finished turn, stored with the chat on the server. */
export interface ISaveTurn {
  type: 'save_turn';
  turn: string;
  record: Record<string, unknown>;
}

/**
 * Before a proposal's Run it runs anything, the browser claims it: the server marks it
 * `running` in the stored chat, once, whichever tab asks (`claim_result` answers).
 */
export interface IClaimProposal {
  type: 'claim_proposal';
  turn: string;
  /** the proposal's place in the turn's `proposals` */
  index: number;
}

export type ClientMessage =
  | IHello
  | IChat
  | IFix
  | ICancel
  | IOpOk
  | IOpFailed
  | IApproval
  | IPolicyMessage
  | ISetModel
  | ISaveTurn
  | IClaimProposal;

// -- server to browser -------------------------------------------------------------------

/** A chat of the notebook, for the history list. */
export interface IChatSummary {
  id: string;
  title: string;
  updated: number | null;
  turns: number;
}

export interface IReady {
  type: 'ready';
  version: number;
  conversation: string;
  notebook: string;
  backend: string;
  model: string;
  /** why no turn can run (no model configured...), in words that say what to set */
  problem: string | null;
  policies: IPolicies;
  /** the chat's stored turns (the panel's records) */
  turns: Record<string, unknown>[];
  chats: IChatSummary[];
}

export interface IModelChanged {
  type: 'model';
  backend: string;
  model: string;
  problem: string | null;
}

/** What one request to the model carried (after secret redaction). */
export interface ISentRecord {
  backend?: string;
  model?: string;
  host?: string;
  time?: string;
  messages?: Record<string, unknown>[];
  tools?: Record<string, unknown>[] | null;
  options?: Record<string, unknown>;
  /** placeholder -> kind of secret (never a value) */
  redacted?: Record<string, string>;
}

export interface IProposalData {
  source: string;
  action: 'approve' | 'propose';
  note: string;
  effects?: string[];
  diff?: string;
}

export interface IEventData {
  status: { text: string };
  text: { text: string };
  tool_call: { name: string; arguments: Record<string, unknown> };
  tool_result: { name: string; ok: boolean; text: string };
  attempt_start: { iteration: number; of?: number };
  attempt: {
    iteration: number;
    sample?: number;
    ok: boolean;
    error?: string | null;
    status?: 'tried' | 'skipped' | 'proposed';
  };
  proposal: IProposalData;
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    cached_tokens?: number;
  };
  sent: { requests: ISentRecord[] };
  stopped: {
    reason: string;
    message?: string;
    fixed?: boolean;
    /** a fix's honest label: fixed, runs, review, needs approval, not fixed */
    label?: string;
    reasons?: string[];
    /** "runs, review": the edit offered (not applied), and its diff */
    offer?: string;
    diff?: string;
  };
}

interface IEventBase {
  type: 'event';
  turn: string;
  /** Epoch milliseconds when the server got the model's event (optional). */
  ts?: number;
}

export type KnownEvent = {
  [K in EventKind]: IEventBase & {
    kind: K;
    data: IEventData[K];
    unknown?: never;
  };
}[EventKind];

/** An event kind this page does not know (newer server): kept, flagged, not rendered. */
export interface IUnknownEvent extends IEventBase {
  kind: string;
  data: Record<string, unknown>;
  unknown: true;
}

export type ServerEvent = KnownEvent | IUnknownEvent;

export interface IOpArgs {
  list_cells: Record<string, never>;
  replace_source: { cell_id: string; source: string };
  insert_cell: { index: number; source: string; cell_type: CellType };
  delete_cell: { cell_id: string };
  /** timeout in seconds; optional on the wire, defaults to 60 */
  run_cell: { cell_id: string; timeout: number };
  /** timeout in seconds; optional on the wire, defaults to 30 */
  kernel_eval: { code: string; timeout: number };
}

export type Op = {
  [K in OpName]: {
    type: 'op';
    turn: string;
    op: string;
    name: K;
    args: IOpArgs[K];
    /** the agent's own helper code (kernel_eval only): no approval, a quiet line */
    helper?: boolean;
    purpose?: string;
  };
}[OpName];

export interface IApprovalRequest {
  type: 'approval_request';
  turn: string;
  request: string;
  ops: IPlannedOp[];
  what: string;
  why: string;
  diff?: string;
  code?: string;
}

export interface IServerError {
  type: 'error';
  message: string;
  turn?: string;
}

/** A proposal's stored state: claimed (`running`), then how its one run ended. */
export type ProposalState = 'running' | 'ran' | 'failed';

/**
 * The answer to `claim_proposal`: `ok` only for the claim that marked it; `state` is the
 * stored state after it (null, with a `message`, when there is no such proposal).
 */
export interface IClaimResult {
  type: 'claim_result';
  turn: string;
  index: number;
  ok: boolean;
  state: ProposalState | null;
  message?: string;
}

export type ServerMessage =
  | IReady
  | IModelChanged
  | ServerEvent
  | IApprovalRequest
  | Op
  | IClaimResult
  | IServerError;

// -- checks ------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function need(message: Obj, what: string, ...keys: string[]): void {
  for (const key of keys) {
    if (!(key in message)) {
      throw new ProtocolError(`${what} message lacks '${key}'`);
    }
  }
}

function check(ok: boolean, text: string): void {
  if (!ok) {
    throw new ProtocolError(text);
  }
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

const EVENT_CHECKS: { [K in EventKind]: (data: Obj) => boolean } = {
  status: d => isString(d.text),
  text: d => isString(d.text),
  tool_call: d => isString(d.name) && isObject(d.arguments),
  tool_result: d =>
    isString(d.name) && typeof d.ok === 'boolean' && isString(d.text),
  attempt_start: d => isNumber(d.iteration),
  attempt: d => isNumber(d.iteration) && typeof d.ok === 'boolean',
  proposal: d => isString(d.source) && isString(d.note),
  usage: d => isNumber(d.prompt_tokens) && isNumber(d.completion_tokens),
  sent: d => Array.isArray(d.requests) && d.requests.every(isObject),
  stopped: d =>
    isString(d.reason) &&
    (d.reasons === undefined || Array.isArray(d.reasons)) &&
    (d.offer === undefined || isString(d.offer))
};

const DEFAULT_TIMEOUTS: Partial<Record<OpName, number>> = {
  run_cell: 60,
  kernel_eval: 30
};

function checkOpArgs(name: OpName, args: Obj): void {
  for (const key of OPS[name].args as readonly string[]) {
    if (key === 'timeout') {
      if (args.timeout === undefined || args.timeout === null) {
        args.timeout = DEFAULT_TIMEOUTS[name];
      }
      check(isNumber(args.timeout), `${name}: timeout must be a number`);
      continue;
    }
    need(args, name, key);
    if (key === 'index') {
      check(Number.isInteger(args.index), `${name}: index must be an integer`);
    } else if (key === 'cell_type') {
      check(
        ['code', 'markdown', 'raw'].includes(args.cell_type as string),
        `${name}: cell_type must be code, markdown or raw`
      );
    } else {
      check(isString(args[key]), `${name}: ${key} must be a string`);
    }
  }
}

/** Check a server message; return it typed, or throw {@link ProtocolError}. */
export function parseServer(message: unknown): ServerMessage {
  if (!isObject(message) || !SERVER_TYPES.includes(message.type as never)) {
    const kind = isObject(message) ? message.type : typeof message;
    throw new ProtocolError(`unknown message type '${String(kind)}'`);
  }
  const kind = message.type as ServerMessage['type'];
  switch (kind) {
    case 'ready':
      need(message, kind, 'version', 'conversation', 'backend', 'model');
      check(isNumber(message.version), 'ready: version must be a number');
      check(
        message.turns === undefined || Array.isArray(message.turns),
        'ready: turns must be a list'
      );
      return message as unknown as IReady;
    case 'model':
      need(message, kind, 'backend', 'model');
      return message as unknown as IModelChanged;
    case 'approval_request': {
      need(message, kind, 'turn', 'request', 'ops', 'what', 'why');
      const ops = message.ops;
      check(
        Array.isArray(ops) && ops.length > 0,
        'approval_request: ops must be a list'
      );
      for (const item of ops as unknown[]) {
        check(
          isObject(item) &&
            isString(item.op) &&
            Object.prototype.hasOwnProperty.call(OPS, item.name as string) &&
            isObject(item.args),
          'approval_request: malformed op'
        );
        const op = item as Obj;
        checkOpArgs(op.name as OpName, op.args as Obj);
      }
      return message as unknown as IApprovalRequest;
    }
    case 'event': {
      need(message, kind, 'turn', 'kind', 'data');
      check(isString(message.kind), 'event: kind must be a string');
      check(isObject(message.data), 'event: data must be an object');
      if (message.ts !== undefined && message.ts !== null) {
        check(isNumber(message.ts), 'event: ts must be a number');
      }
      const eventKind = message.kind as string;
      if (!EVENT_KINDS.includes(eventKind as EventKind)) {
        return { ...(message as unknown as IUnknownEvent), unknown: true };
      }
      check(
        EVENT_CHECKS[eventKind as EventKind](message.data as Obj),
        `event ${eventKind}: malformed data`
      );
      return message as unknown as KnownEvent;
    }
    case 'op': {
      need(message, kind, 'turn', 'op', 'name', 'args');
      const name = message.name as string;
      check(
        Object.prototype.hasOwnProperty.call(OPS, name),
        `unknown notebook operation '${name}'`
      );
      check(isObject(message.args), `${name}: args must be an object`);
      checkOpArgs(name as OpName, message.args as Obj);
      return message as unknown as Op;
    }
    case 'claim_result':
      need(message, kind, 'turn', 'index', 'ok', 'state');
      check(
        isString(message.turn) && Number.isInteger(message.index),
        'claim_result: turn must be a string and index a whole number'
      );
      check(
        typeof message.ok === 'boolean',
        'claim_result: ok must be true or false'
      );
      check(
        message.state === null ||
          ['running', 'ran', 'failed'].includes(message.state as string),
        'claim_result: unknown state'
      );
      return message as unknown as IClaimResult;
    case 'error':
      need(message, kind, 'message');
      return message as unknown as IServerError;
  }
}

/** Check a browser message (what the server's `parse_client` accepts). */
export function parseClient(message: unknown): ClientMessage {
  if (!isObject(message) || !CLIENT_TYPES.includes(message.type as never)) {
    const kind = isObject(message) ? message.type : typeof message;
    throw new ProtocolError(`unknown message type '${String(kind)}'`);
  }
  const kind = message.type as ClientMessage['type'];
  switch (kind) {
    case 'hello':
      need(message, kind, 'version', 'conversation', 'notebook');
      check(
        message.version === PROTOCOL_VERSION,
        `protocol version ${String(message.version)} is not ${PROTOCOL_VERSION}`
      );
      break;
    case 'chat':
      need(message, kind, 'turn', 'text', 'mode');
      check(
        MODES.includes(message.mode as Mode),
        `mode must be one of ${MODES.join(', ')}`
      );
      check(
        isString(message.text) && message.text.trim() !== '',
        'chat message text is empty'
      );
      break;
    case 'fix':
      need(message, kind, 'turn', 'cell_id');
      break;
    case 'cancel':
      need(message, kind, 'turn');
      break;
    case 'op_result':
      need(message, kind, 'op', 'ok');
      need(message, kind, message.ok ? 'value' : 'error');
      break;
    case 'approval':
      need(message, kind, 'request', 'approved');
      check(
        typeof message.approved === 'boolean',
        'approval: approved must be true or false'
      );
      if (message.approved) {
        need(message, kind, 'ops');
        check(
          Array.isArray(message.ops) &&
            message.ops.length > 0 &&
            (message.ops as unknown[]).every(
              o =>
                isObject(o) &&
                isString(o.op) &&
                Object.prototype.hasOwnProperty.call(OPS, o.name as string) &&
                isObject(o.args)
            ),
          "approval: ops must echo the request's ops"
        );
      }
      break;
    case 'policy':
      for (const key of ['edit', 'run']) {
        if (key in message) {
          check(
            POLICIES.includes(message[key] as Policy),
            `policy: ${key} must be ask or auto`
          );
        }
      }
      break;
    case 'set_model':
      need(message, kind, 'backend', 'model');
      break;
    case 'save_turn':
      need(message, kind, 'turn', 'record');
      check(isObject(message.record), 'save_turn: record must be an object');
      break;
    case 'claim_proposal':
      need(message, kind, 'turn', 'index');
      check(isString(message.turn), 'claim_proposal: turn must be a string');
      check(
        Number.isInteger(message.index) && (message.index as number) >= 0,
        'claim_proposal: index must be a whole number'
      );
      break;
  }
  return message as unknown as ClientMessage;
}

// -- builders ----------------------------------------------------------------------------

/** One line, as the protocol wants error texts. */
export function oneLine(text: string, limit = 500): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > limit ? line.slice(0, limit - 1) + '…' : line;
}

export function hello(
  conversation: string,
  notebook: string,
  extra: { notebook_id?: string; new?: boolean; policies?: IPolicies } = {}
): IHello {
  return {
    type: 'hello',
    version: PROTOCOL_VERSION,
    conversation,
    notebook,
    ...extra
  };
}

export function chat(
  turn: string,
  text: string,
  mode: Mode,
  context: IChatContext
): IChat {
  return { type: 'chat', turn, text, mode, context };
}

export function fix(turn: string, cellId: string): IFix {
  return { type: 'fix', turn, cell_id: cellId };
}

export function cancel(turn: string): ICancel {
  return { type: 'cancel', turn };
}

export function opOk<K extends OpName>(op: string, value: IOpValues[K]): IOpOk {
  return { type: 'op_result', op, ok: true, value };
}

export function opFailed(op: string, error: string): IOpFailed {
  return { type: 'op_result', op, ok: false, error: oneLine(error) };
}

export function approval(
  request: IApprovalRequest,
  approved: boolean
): IApproval {
  return approved
    ? { type: 'approval', request: request.request, approved, ops: request.ops }
    : { type: 'approval', request: request.request, approved };
}

export function policy(policies: Partial<IPolicies>): IPolicyMessage {
  return { type: 'policy', ...policies };
}

export function setModel(backend: string, model: string): ISetModel {
  return { type: 'set_model', backend, model };
}

export function saveTurn(
  turn: string,
  record: Record<string, unknown>
): ISaveTurn {
  return { type: 'save_turn', turn, record };
}

export function claimProposal(turn: string, index: number): IClaimProposal {
  return { type: 'claim_proposal', turn, index };
}
