/** The turns of a conversation: each a user message and the assistant's reply. */
import React, { useLayoutEffect, useRef } from 'react';

import type { Conversation } from '../conversation';
import type { ITurn, IUsage } from '../turns';
import { Card } from './Card';
import type { ICodeActions } from './CodeBlock';
import { RichText } from './RichText';

export function usageText(u: IUsage): string {
  const cached = u.cached ? `, ${u.cached} cached` : '';
  const calls = u.calls > 1 ? ` in ${u.calls} calls` : '';
  return `${u.prompt} prompt + ${u.completion} completion tokens${cached}${calls}`;
}

function Assistant(props: {
  turn: ITurn;
  conversation: Conversation;
  actions: ICodeActions;
}) {
  const { turn, conversation, actions } = props;
  return (
    <div
      className="jp-Devstral-message"
      data-role="assistant"
      data-turn={turn.id}
      data-done={turn.done ? 'true' : 'false'}
      data-reason={turn.done ? turn.reason : undefined}
    >
      {turn.parts.map((part, i) =>
        part.kind === 'text' ? (
          <RichText key={i} text={part.text} actions={actions} />
        ) : (
          <Card
            key={part.card.id}
            card={part.card}
            turnDone={turn.done}
            decide={(c, ok) => conversation.decide(c, ok)}
          />
        )
      )}
      {!turn.done && (
        <div className="jp-Devstral-working">{turn.status || 'working'}…</div>
      )}
      {turn.done && (turn.stopMessage || turn.reason !== 'answered') && (
        <div className="jp-Devstral-stopped" data-reason={turn.reason}>
          {turn.stopMessage || turn.reason?.replace(/_/g, ' ')}
        </div>
      )}
      {turn.usage && (
        <div className="jp-Devstral-usage">{usageText(turn.usage)}</div>
      )}
    </div>
  );
}

export function Transcript(props: {
  conversation: Conversation;
  actions: ICodeActions;
}) {
  const { conversation, actions } = props;
  const ref = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  useLayoutEffect(() => {
    const node = ref.current;
    if (node && pinned.current) {
      node.scrollTop = node.scrollHeight;
    }
  });
  return (
    <div
      className="jp-Devstral-transcript"
      ref={ref}
      onScroll={event => {
        const node = event.currentTarget;
        pinned.current =
          node.scrollHeight - node.scrollTop - node.clientHeight < 40;
      }}
    >
      {conversation.turns.length === 0 && (
        <div className="jp-Devstral-empty">
          Ask about this notebook, or switch to Agent to let Devstral edit and
          run its cells.
        </div>
      )}
      {conversation.turns.map(turn => (
        <React.Fragment key={turn.id}>
          <div
            className="jp-Devstral-message"
            data-role="user"
            data-turn={turn.id}
            data-mode={turn.mode}
          >
            {turn.request}
          </div>
          <Assistant
            turn={turn}
            conversation={conversation}
            actions={actions}
          />
        </React.Fragment>
      ))}
    </div>
  );
}
