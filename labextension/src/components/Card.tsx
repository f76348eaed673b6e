/**
 * One step of a turn as a compact card: what was done (in the user's words: "edit cell 4",
 * not cell ids), its diff, its result; Approve/Reject when asked. A fix attempt is one card
 * with its candidates folded in a <details>.
 */
import React from 'react';

import type { IAttempt, ICard } from '../turns';
import { CodeView } from './CodeBlock';
import { Diff } from './Diff';

const LONG = 2000;

/** How the transcript names a cell: "cell 4", and its first line for a tooltip. */
export type CellLabel = (cellId: string) => { label: string; hint: string };

/** Arguments that are plumbing, not something the user needs to read. */
const INTERNAL = new Set([
  'cell_id',
  'before_cell_id',
  'after_cell_id',
  'position',
  'timeout',
  'index',
  'cell_type',
  'source',
  'code'
]);

function clip(text: string): string {
  return text.length > LONG
    ? text.slice(0, LONG) + `… (${text.length - LONG} more)`
    : text;
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function statusOf(card: ICard, turnDone: boolean): string {
  if (card.approval === 'pending') {
    return 'waiting';
  }
  if (card.running) {
    return 'running';
  }
  if (!card.result) {
    return card.compact ? 'info' : turnDone ? 'unanswered' : 'pending';
  }
  return card.result.ok
    ? 'ok'
    : card.approval === 'rejected'
      ? 'declined'
      : card.approval === 'expired'
        ? 'unanswered'
        : 'failed';
}

const STATUS_TEXT: Record<string, string> = {
  waiting: 'needs your approval',
  running: 'running',
  pending: 'working',
  unanswered: 'no result',
  ok: 'done',
  failed: 'failed',
  declined: 'declined',
  info: ''
};

/** An edit that changed nothing (a fix that puts the cell back as it was). */
function unchanged(card: ICard): boolean {
  return !!card.diff && card.diff.every(line => line.op === ' ');
}

/** The card's title in the user's words. */
function titleOf(card: ICard, cell: CellLabel): { text: string; hint: string } {
  const args = card.args ?? {};
  const target = (key: string) =>
    typeof args[key] === 'string'
      ? cell(args[key] as string)
      : { label: 'a cell', hint: '' };
  const ran = card.ops?.includes('run_cell') && card.tool !== 'run_cell';
  if (card.attempt) {
    const { iteration, of } = card.attempt;
    return { text: `Attempt ${iteration}${of ? ` of ${of}` : ''}`, hint: '' };
  }
  if (card.what) {
    return { text: card.what, hint: '' }; // the server's words for the step it asks about
  }
  const verb: Record<string, string> = {
    edit_cell: 'edit',
    replace_source: 'edit',
    run_cell: 'run',
    read_cell: 'read',
    delete_cell: 'delete'
  };
  const name = card.call ?? card.tool;
  if (name in verb) {
    const { label, hint } = target('cell_id');
    if (name === 'replace_source' && unchanged(card)) {
      return {
        text: `${label} kept as it was` + (ran ? ', then run' : ''),
        hint
      };
    }
    // an agent's edit_cell that the fix loop tried: its title says which attempt
    if (card.title.startsWith('attempt')) {
      return { text: card.title, hint };
    }
    return {
      text: `${verb[name]} ${label}` + (ran ? ' and run it' : ''),
      hint
    };
  }
  if (name === 'insert_cell') {
    const type = args.cell_type === 'markdown' ? 'markdown' : 'code';
    if (typeof args.before_cell_id === 'string') {
      const { label, hint } = target('before_cell_id');
      return { text: `insert a ${type} cell before ${label}`, hint };
    }
    if (args.position === 'end') {
      return { text: `insert a ${type} cell at the end`, hint: '' };
    }
    if (typeof args.cell_id === 'string' && typeof args.position === 'string') {
      const { label, hint } = target('cell_id');
      return { text: `insert a ${type} cell ${args.position} ${label}`, hint };
    }
    return { text: card.title, hint: '' };
  }
  if (name === 'run_code' || name === 'kernel_eval') {
    return { text: 'run code in the kernel', hint: '' };
  }
  if (name === 'list_cells') {
    return { text: 'list the cells', hint: '' };
  }
  return { text: card.title.replace(/_/g, ' '), hint: '' };
}

/** A result: its first line, the rest folded. */
function Result(props: { ok: boolean; text: string }): JSX.Element {
  const text = clip(props.text.trim());
  const [first, ...rest] = text.split('\n');
  return (
    <div className="jp-Devstral-cardResult" data-ok={String(props.ok)}>
      <div className="jp-Devstral-resultLine">{first}</div>
      {rest.length > 0 && (
        <details className="jp-Devstral-more">
          <summary>more</summary>
          <pre>{rest.join('\n')}</pre>
        </details>
      )}
    </div>
  );
}

function Args({ args }: { args: Record<string, unknown> }) {
  const entries = Object.entries(args).filter(([key]) => !INTERNAL.has(key));
  if (entries.length === 0) {
    return null;
  }
  return (
    <dl className="jp-Devstral-cardArgs">
      {entries.map(([key, value]) => (
        <div key={key}>
          <dt>{key.replace(/_/g, ' ')}</dt>
          <dd>{clip(show(value))}</dd>
        </div>
      ))}
    </dl>
  );
}

function Candidates({ attempt }: { attempt: IAttempt }): JSX.Element | null {
  const { candidates, feedback } = attempt;
  if (candidates.length === 0) {
    return null;
  }
  const ran = candidates.filter(c => c.result?.ok).length;
  return (
    <details className="jp-Devstral-candidates">
      <summary>
        {candidates.length} candidate{candidates.length === 1 ? '' : 's'}
        {ran ? `, ${ran} ran` : ''}
      </summary>
      <ol>
        {candidates.map((c, i) => (
          <li
            key={i}
            className="jp-Devstral-candidate"
            data-status={!c.result ? 'running' : c.result.ok ? 'ok' : 'failed'}
          >
            <div className="jp-Devstral-resultLine">
              {c.result ? c.result.text.split('\n')[0] : 'running…'}
            </div>
            {c.source && <CodeView code={c.source} lang="python" />}
          </li>
        ))}
      </ol>
      {feedback && (
        <details className="jp-Devstral-more jp-Devstral-feedback">
          <summary>what the model was told</summary>
          <pre>{clip(feedback)}</pre>
        </details>
      )}
    </details>
  );
}

export function Card(props: {
  card: ICard;
  /** the card's turn has ended: a call still without result will get none */
  turnDone: boolean;
  cellLabel: CellLabel;
  decide(card: ICard, approve: boolean): void;
}): JSX.Element {
  const { card, decide } = props;
  const status = statusOf(card, props.turnDone);
  if (card.compact) {
    return (
      <div
        className="jp-Devstral-card jp-mod-compact"
        data-tool={card.tool}
        data-status={status}
      >
        {card.title}
      </div>
    );
  }
  const title = titleOf(card, props.cellLabel);
  const source = card.args?.source;
  return (
    <div
      className="jp-Devstral-card"
      data-tool={card.tool}
      data-status={status}
      data-approval={card.approval}
      data-ops={card.ops?.join(' ')}
    >
      <div className="jp-Devstral-cardHeader">
        <span className="jp-Devstral-cardIcon" aria-hidden="true" />
        <span className="jp-Devstral-cardTool" title={title.hint || undefined}>
          {title.text}
        </span>
        <span className="jp-Devstral-cardStatus">{STATUS_TEXT[status]}</span>
      </div>
      {card.why && card.approval === 'pending' && (
        <div className="jp-Devstral-why">asks because: {card.why}</div>
      )}
      {card.args && <Args args={card.args} />}
      {card.diff
        ? !unchanged(card) && <Diff lines={card.diff} />
        : typeof source === 'string' &&
          source && <CodeView code={source} lang="python" />}
      {!card.diff && card.code && <CodeView code={card.code} lang="python" />}
      {card.result &&
        !card.attempt &&
        !(unchanged(card) && card.result.text === 'edited') && (
          <Result {...card.result} />
        )}
      {card.attempt && card.result && (
        <div
          className="jp-Devstral-cardResult"
          data-ok={String(card.result.ok)}
        >
          <div className="jp-Devstral-resultLine">
            {card.result.text.split('\n')[0]}
          </div>
        </div>
      )}
      {card.attempt && <Candidates attempt={card.attempt} />}
      {card.approval === 'pending' && (
        <div className="jp-Devstral-approval">
          <button
            type="button"
            className="jp-Devstral-approve jp-mod-accept"
            onClick={() => decide(card, true)}
          >
            Approve
          </button>
          <button
            type="button"
            className="jp-Devstral-reject"
            onClick={() => decide(card, false)}
          >
            Reject
          </button>
        </div>
      )}
    </div>
  );
}
