/** One agent step: tool, arguments, result; a line diff for edits; Approve/Reject when asked. */
import React from 'react';

import type { IDiffLine } from '../diff';
import type { ICard } from '../turns';

const LONG = 2000;

function clip(text: string): string {
  return text.length > LONG
    ? text.slice(0, LONG) + `… (${text.length - LONG} more)`
    : text;
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 1);
}

function Args({
  args,
  hide
}: {
  args: Record<string, unknown>;
  hide: string[];
}) {
  const entries = Object.entries(args).filter(([key]) => !hide.includes(key));
  if (entries.length === 0) {
    return null;
  }
  return (
    <dl className="jp-Devstral-cardArgs">
      {entries.map(([key, value]) => {
        const text = clip(show(value));
        return (
          <div key={key}>
            <dt>{key}</dt>
            <dd>
              {text.includes('\n') || text.length > 60 ? (
                <pre>{text}</pre>
              ) : (
                text
              )}
            </dd>
          </div>
        );
      })}
    </dl>
  );
}

function Diff({ lines }: { lines: IDiffLine[] }) {
  return (
    <pre className="jp-Devstral-diff">
      {lines.map((line, i) => (
        <div
          key={i}
          className="jp-Devstral-diffLine"
          data-op={line.op === ' ' ? 'same' : line.op === '+' ? 'add' : 'del'}
        >
          {line.op + ' ' + line.text}
        </div>
      ))}
    </pre>
  );
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
      : 'failed';
}

export function Card(props: {
  card: ICard;
  /** the card's turn has ended: a call still without result will get none */
  turnDone: boolean;
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
  return (
    <div
      className="jp-Devstral-card"
      data-tool={card.tool}
      data-status={status}
      data-approval={card.approval}
    >
      <div className="jp-Devstral-cardHeader">
        <span className="jp-Devstral-cardTool">{card.title}</span>
        <span className="jp-Devstral-cardStatus">{status}</span>
      </div>
      {card.args && (
        <Args args={card.args} hide={card.diff ? ['source'] : []} />
      )}
      {card.diff && <Diff lines={card.diff} />}
      {card.result && (
        <pre
          className="jp-Devstral-cardResult"
          data-ok={String(card.result.ok)}
        >
          {clip(card.result.text)}
        </pre>
      )}
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
