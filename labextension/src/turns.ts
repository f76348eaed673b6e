/**
 * What the panel shows of a conversation: turns, each a user request and the assistant's
 * reply as text parts and cards; and the reducer that applies server events to a turn.
 *
 * One card per step: a tool call, the notebook ops it caused (an edit, a run) and its result
 * share a card. A Fix turn shows one card per attempt, its candidates inside; the model's
 * raw candidate replies are not shown as prose.
 */
import type { IDiffLine } from './diff';
import type { ISentRecord, KnownEvent, Mode } from './protocol';

export type Approval = 'pending' | 'approved' | 'rejected' | 'expired';

/** One candidate edit of a fix attempt and what its trial run said. */
export interface ICandidate {
  source: string;
  /** undefined while the trial runs */
  result?: { ok: boolean; text: string };
  /** not tried: stopped by the effects gate (skipped) or left to the user (proposed) */
  status?: 'tried' | 'skipped' | 'proposed';
}

/** A fix attempt: its number, how many there may be, its candidates. */
export interface IAttempt {
  iteration: number;
  of?: number;
  candidates: ICandidate[];
  /** what the model was told about the failure it goes on from */
  feedback?: string;
}

/** One step of a turn, shown as a card. */
export interface ICard {
  id: number;
  /** the tool or op name (`data-tool`) */
  tool: string;
  title: string;
  args?: Record<string, unknown>;
  result?: { ok: boolean; text: string };
  diff?: IDiffLine[];
  approval?: Approval;
  running?: boolean;
  /** a one-line step (status events) */
  compact?: boolean;
  /** the model's tool call this step card stands for */
  call?: string;
  /** the notebook ops carried out within this step, in order */
  ops?: string[];
  /** the step's tool_result arrived: nothing more will join the card */
  answered?: boolean;
  /** a fix attempt card */
  attempt?: IAttempt;
  /** an approval card: the step in words, why it asks, the code that would run */
  what?: string;
  why?: string;
  code?: string;
}

/** A fix candidate that was not tried: it waits for the user ("needs approval"). */
export interface IProposal {
  source: string;
  action: 'approve' | 'propose';
  note: string;
  effects: string[];
  diff: string;
  /**
   * the user's "Run it": running (claimed on the server, then run), then the run's result
   * line; `claimed`: the server refused this page's claim (run from another tab or page)
   */
  state?: 'running' | 'ran' | 'failed' | 'claimed';
  result?: string;
}

/** A "runs, review" fix: offered, applied only by the user's click. */
export interface IOffer {
  source: string;
  diff: string;
  applied?: boolean;
}

export type Part =
  { kind: 'text'; text: string } | { kind: 'card'; card: ICard };

export interface IUsage {
  prompt: number;
  completion: number;
  cached: number;
  calls: number;
  /** the last model call's prompt, as the backend counted it */
  last_prompt?: number;
}

export interface ITurn {
  id: string;
  /** what the user asked, as the user message shows it */
  request: string;
  mode: Mode | 'fix';
  /** the cell a fix turn works on */
  cellId?: string;
  parts: Part[];
  status: string;
  done: boolean;
  reason?: string;
  stopMessage?: string;
  usage?: IUsage;
  /** the turn changed the notebook (edits or runs): undo makes sense */
  mutated: boolean;
  /** ids of the cells it ran */
  ran: string[];
  /** the epoch ms `ts` of its first text event, once one arrived */
  firstText?: { ts: number | undefined };
  /** a fix's honest label and its reasons */
  label?: string;
  reasons?: string[];
  offer?: IOffer;
  proposals?: IProposal[];
  /** what each request to the model carried ("What was sent") */
  sent?: ISentRecord[];
  /** the store kept no "What was sent" for this older turn */
  sentDropped?: boolean;
  /** the agent's own helper code run in the kernel: purpose -> times (quiet line) */
  helper?: Record<string, number>;
  /** shown from the stored chat (a reload or a restart) */
  restored?: boolean;
}

let cardSeq = 0;
let turnSeq = 0;

/** A new card id (cards restored from a stored chat get fresh ones). */
export function nextCardId(): number {
  return ++cardSeq;
}

export function newTurn(
  request: string,
  mode: Mode | 'fix',
  cellId?: string
): ITurn {
  return {
    id: `t-${Date.now().toString(36)}-${++turnSeq}`,
    request,
    mode,
    cellId,
    parts: [],
    status: 'connecting',
    done: false,
    mutated: false,
    ran: []
  };
}

/** The ops a tool call may cause in the browser. */
const OPS_OF_CALL: Record<string, string[]> = {
  edit_cell: ['replace_source', 'run_cell'],
  insert_cell: ['insert_cell'],
  delete_cell: ['delete_cell'],
  run_cell: ['run_cell'],
  run_code: ['kernel_eval']
};

function lastCard(turn: ITurn): ICard | undefined {
  const last = turn.parts[turn.parts.length - 1];
  return last?.kind === 'card' ? last.card : undefined;
}

/** The card a new op card joins instead of standing alone, if any. */
function joinable(turn: ITurn, card: Omit<ICard, 'id'>): ICard | undefined {
  const last = lastCard(turn);
  if (!last || card.compact || card.call || card.attempt) {
    return undefined;
  }
  if (last.approval === 'pending' || last.running) {
    return undefined;
  }
  // the op of the model's tool call (agent steps)
  if (
    last.call &&
    !last.answered &&
    (OPS_OF_CALL[last.call] ?? []).includes(card.tool)
  ) {
    return last;
  }
  // the run of a cell right after its edit (a fix applies its winner so)
  const sameCell =
    last.args?.cell_id !== undefined &&
    last.args.cell_id === card.args?.cell_id;
  if (
    !last.call &&
    card.tool === 'run_cell' &&
    last.ops?.[last.ops.length - 1] === 'replace_source' &&
    last.result?.ok &&
    sameCell
  ) {
    return last;
  }
  return undefined;
}

/**
 * Add a card to a turn, or, for an op that belongs to the step on the last card (the edit
 * of an `edit_cell` call, the run after an edit), join that card and return it.
 */
export function addCard(
  turn: ITurn | undefined,
  card: Omit<ICard, 'id'>
): ICard {
  const host = turn && joinable(turn, card);
  if (host) {
    host.ops = [...(host.ops ?? []), card.tool];
    host.diff = card.diff ?? host.diff;
    host.approval = undefined;
    if (!host.call) {
      host.args = { ...card.args, ...host.args };
    }
    return host;
  }
  const full: ICard = { id: ++cardSeq, ...card };
  if (!full.call && !full.compact && !full.attempt) {
    full.ops = [card.tool];
  }
  turn?.parts.push({ kind: 'card', card: full });
  return full;
}

export function finishTurn(turn: ITurn, reason: string, message = ''): void {
  turn.done = true;
  turn.reason = reason;
  turn.stopMessage = message;
  turn.status = '';
  for (const part of turn.parts) {
    if (part.kind === 'card' && part.card.attempt) {
      part.card.running = false;
    }
  }
}

/** The latest step card of a tool call still waiting for its result. */
function openStep(turn: ITurn, name: string): ICard | undefined {
  for (let i = turn.parts.length - 1; i >= 0; i--) {
    const part = turn.parts[i];
    if (
      part.kind === 'card' &&
      part.card.call === name &&
      !part.card.answered
    ) {
      return part.card;
    }
  }
  return undefined;
}

/** The card of fix attempt `iteration` (the latest attempt when undefined); made if new. */
function attemptCard(turn: ITurn, iteration?: number, of?: number): ICard {
  let latest: ICard | undefined;
  for (const part of turn.parts) {
    if (part.kind === 'card' && part.card.attempt) {
      latest = part.card;
      if (part.card.attempt.iteration === iteration) {
        part.card.attempt.of = of ?? part.card.attempt.of;
        return part.card;
      }
    }
  }
  if (latest && iteration === undefined) {
    return latest;
  }
  if (latest) {
    latest.running = false;
  }
  const n = iteration ?? (latest ? latest.attempt!.iteration + 1 : 1);
  return addCard(turn, {
    tool: 'attempt',
    title: `attempt ${n}`,
    attempt: { iteration: n, of: of ?? latest?.attempt?.of, candidates: [] },
    running: true
  });
}

/** An attempt card's result: a candidate ran, or the last failure so far. */
function summarize(card: ICard): void {
  const candidates = card.attempt!.candidates;
  const tried = candidates.filter(c => c.result);
  const winner = tried.findIndex(c => c.result!.ok);
  if (winner >= 0) {
    card.result = { ok: true, text: `candidate ${winner + 1} runs` };
  } else if (tried.length) {
    card.result = { ok: false, text: tried[tried.length - 1].result!.text };
  }
}

/** Apply one server event to its (running) turn. */
export function applyEvent(turn: ITurn, event: KnownEvent): void {
  const fix = turn.mode === 'fix';
  switch (event.kind) {
    case 'status':
      turn.status = event.data.text;
      break;
    case 'text': {
      turn.firstText = turn.firstText ?? { ts: event.ts };
      if (fix) {
        turn.status = 'writing a candidate';
        break; // the candidate's edit shows on its attempt card
      }
      const last = turn.parts[turn.parts.length - 1];
      if (last?.kind === 'text') {
        last.text += event.data.text;
      } else {
        turn.parts.push({ kind: 'text', text: event.data.text });
      }
      turn.status = 'writing';
      break;
    }
    case 'tool_call': {
      const { name, arguments: args } = event.data;
      if (fix && name === 'edit_cell') {
        const card = attemptCard(turn);
        card.attempt!.candidates.push({ source: String(args.source ?? '') });
        turn.status = `trying candidate ${card.attempt!.candidates.length}`;
        break;
      }
      turn.status = `calling ${name}`;
      addCard(turn, { tool: name, title: name, args, call: name });
      break;
    }
    case 'tool_result': {
      const { name, ok, text } = event.data;
      if (fix && name === 'edit_cell') {
        attemptCard(turn).attempt!.feedback = text;
        break;
      }
      const card = openStep(turn, name);
      if (card) {
        card.result = { ok, text };
        card.answered = true;
      } else {
        addCard(turn, {
          tool: name,
          title: name,
          call: name,
          answered: true,
          result: { ok, text }
        });
      }
      break;
    }
    case 'attempt_start': {
      const { iteration, of } = event.data;
      turn.status = `attempt ${iteration}` + (of ? `/${of}` : '');
      if (fix) {
        attemptCard(turn, iteration, of);
      }
      break;
    }
    case 'attempt': {
      const { iteration, sample, ok, error, status } = event.data;
      const untried = status === 'skipped' || status === 'proposed';
      const result = {
        ok,
        text: ok
          ? 'the cell ran without error'
          : (untried ? 'not tried: ' : '') + String(error || 'failed')
      };
      if (fix) {
        const card = attemptCard(turn, iteration);
        const open = untried
          ? undefined
          : card.attempt!.candidates.find(c => !c.result);
        if (open) {
          open.result = result;
        } else {
          card.attempt!.candidates.push({ source: '', result, status });
        }
        summarize(card);
        break;
      }
      // an agent's edit_cell and its trial: one card for both
      const title =
        `attempt ${iteration}` +
        (typeof sample === 'number' ? `, candidate ${sample + 1}` : '');
      const step = openStep(turn, 'edit_cell');
      if (step) {
        step.title = title;
        step.result = result;
      } else {
        addCard(turn, { tool: 'attempt', title, result });
      }
      break;
    }
    case 'proposal': {
      const d = event.data;
      turn.proposals = [
        ...(turn.proposals ?? []),
        {
          source: d.source,
          action: d.action,
          note: d.note,
          effects: d.effects ?? [],
          diff: d.diff ?? ''
        }
      ];
      break;
    }
    case 'usage': {
      const u = turn.usage ?? { prompt: 0, completion: 0, cached: 0, calls: 0 };
      u.prompt += event.data.prompt_tokens;
      u.completion += event.data.completion_tokens;
      u.cached += event.data.cached_tokens ?? 0;
      u.calls += 1;
      u.last_prompt = event.data.prompt_tokens;
      turn.usage = u;
      break;
    }
    case 'sent':
      turn.sent = event.data.requests;
      break;
    case 'stopped': {
      const d = event.data;
      finishTurn(turn, d.reason, d.message ?? '');
      if (d.label) {
        turn.label = d.label;
        turn.reasons = d.reasons ?? [];
      }
      if (typeof d.offer === 'string') {
        turn.offer = { source: d.offer, diff: d.diff ?? '' };
      }
      break;
    }
  }
}

/** Events newer servers send that this page knows without the protocol listing them. */
export function applyOtherEvent(
  turn: ITurn,
  kind: string,
  data: Record<string, unknown>
): void {
  if (kind === 'attempt_start') {
    const iteration = Number(data.iteration);
    const of = typeof data.of === 'number' ? data.of : undefined;
    turn.status = `attempt ${data.iteration}` + (of ? `/${of}` : '');
    if (turn.mode === 'fix' && Number.isFinite(iteration)) {
      attemptCard(turn, iteration, of);
    }
  }
}
