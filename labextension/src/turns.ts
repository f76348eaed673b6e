/**
 * What the panel shows of a conversation: turns, each a user request and the assistant's
 * reply as text parts and cards; and the reducer that applies server events to a turn.
 */
import type { IDiffLine } from './diff';
import type { KnownEvent, Mode } from './protocol';

export type Approval = 'pending' | 'approved' | 'rejected' | 'expired';

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
}

export type Part =
  { kind: 'text'; text: string } | { kind: 'card'; card: ICard };

export interface IUsage {
  prompt: number;
  completion: number;
  cached: number;
  calls: number;
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
}

let cardSeq = 0;
let turnSeq = 0;

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

export function addCard(
  turn: ITurn | undefined,
  card: Omit<ICard, 'id'>
): ICard {
  const full: ICard = { id: ++cardSeq, ...card };
  turn?.parts.push({ kind: 'card', card: full });
  return full;
}

export function finishTurn(turn: ITurn, reason: string, message = ''): void {
  turn.done = true;
  turn.reason = reason;
  turn.stopMessage = message;
  turn.status = '';
}

function openCard(turn: ITurn, tool: string): ICard | undefined {
  for (let i = turn.parts.length - 1; i >= 0; i--) {
    const part = turn.parts[i];
    if (
      part.kind === 'card' &&
      part.card.tool === tool &&
      !part.card.result &&
      !part.card.compact
    ) {
      return part.card;
    }
  }
  return undefined;
}

/** Apply one server event to its (running) turn. */
export function applyEvent(turn: ITurn, event: KnownEvent): void {
  switch (event.kind) {
    case 'status':
      turn.status = event.data.text;
      addCard(turn, { tool: 'status', title: event.data.text, compact: true });
      break;
    case 'text': {
      const last = turn.parts[turn.parts.length - 1];
      if (last?.kind === 'text') {
        last.text += event.data.text;
      } else {
        turn.parts.push({ kind: 'text', text: event.data.text });
      }
      turn.firstText = turn.firstText ?? { ts: event.ts };
      turn.status = 'writing';
      break;
    }
    case 'tool_call':
      turn.status = `calling ${event.data.name}`;
      addCard(turn, {
        tool: event.data.name,
        title: event.data.name,
        args: event.data.arguments
      });
      break;
    case 'tool_result': {
      const { name, ok, text } = event.data;
      const card = openCard(turn, name);
      if (card) {
        card.result = { ok, text };
      } else {
        addCard(turn, { tool: name, title: name, result: { ok, text } });
      }
      break;
    }
    case 'attempt': {
      const { iteration, sample, ok, error } = event.data;
      const title =
        `attempt ${iteration}` +
        (typeof sample === 'number' ? `, candidate ${sample + 1}` : '');
      const result = {
        ok,
        text: ok ? 'the cell ran without error' : String(error ?? 'failed')
      };
      // a fix candidate arrives as an edit_cell call, then its trial: one card for both
      const candidate = openCard(turn, 'edit_cell');
      if (candidate) {
        candidate.title = title;
        candidate.result = result;
      } else {
        addCard(turn, { tool: 'attempt', title, result });
      }
      break;
    }
    case 'usage': {
      const u = turn.usage ?? { prompt: 0, completion: 0, cached: 0, calls: 0 };
      u.prompt += event.data.prompt_tokens;
      u.completion += event.data.completion_tokens;
      u.cached += event.data.cached_tokens ?? 0;
      u.calls += 1;
      turn.usage = u;
      break;
    }
    case 'stopped':
      finishTurn(turn, event.data.reason, event.data.message ?? '');
      break;
  }
}

/** Events newer servers send that this page only shows as status (e.g. `attempt_start`). */
export function applyOtherEvent(
  turn: ITurn,
  kind: string,
  data: Record<string, unknown>
): void {
  if (kind === 'attempt_start') {
    turn.status = `attempt ${data.iteration}` + (data.of ? `/${data.of}` : '');
  }
}
