/**
 * The turns of a conversation: each a user message and the assistant's reply. The view
 * follows new content unless the user scrolled up; then "Jump to latest" brings it back.
 */
import React, { useCallback, useEffect, useLayoutEffect, useRef } from 'react';
import { useState } from 'react';

import type { Conversation } from '../conversation';
import type { ITurn, IUsage } from '../turns';
import { Card, CellLabel } from './Card';
import type { ICodeActions } from './CodeBlock';
import { RichText } from './RichText';

export function usageText(u: IUsage): string {
  const cached = u.cached ? `, ${u.cached} cached` : '';
  const calls = u.calls > 1 ? ` in ${u.calls} calls` : '';
  return `${u.prompt} prompt + ${u.completion} completion tokens${cached}${calls}`;
}

/** "cell 4" for a cell id of the conversation's notebook (its first line as a hint). */
function cellLabels(conversation: Conversation): CellLabel {
  const cells = conversation.panel?.content.model?.sharedModel.cells ?? [];
  return (cellId: string) => {
    const index = cells.findIndex(cell => cell.getId() === cellId);
    if (index < 0) {
      return { label: 'a cell', hint: '' };
    }
    const first = cells[index].getSource().trim().split('\n')[0] ?? '';
    return { label: `cell ${index + 1}`, hint: first };
  };
}

function Assistant(props: {
  turn: ITurn;
  conversation: Conversation;
  actions: ICodeActions;
  cellLabel: CellLabel;
}) {
  const { turn, conversation, actions, cellLabel } = props;
  return (
    <div
      className="jp-Devstral-message"
      data-role="assistant"
      data-turn={turn.id}
      data-mode={turn.mode}
      data-done={turn.done ? 'true' : 'false'}
      data-reason={turn.done ? turn.reason : undefined}
    >
      {turn.parts.map((part, i) =>
        part.kind === 'text' ? (
          <RichText
            key={i}
            text={part.text}
            ended={turn.done || i < turn.parts.length - 1}
            actions={actions}
          />
        ) : (
          <Card
            key={part.card.id}
            card={part.card}
            turnDone={turn.done}
            cellLabel={cellLabel}
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

/** Within this many pixels of the bottom counts as at the bottom. */
const SLACK = 40;

function atBottom(node: HTMLElement): boolean {
  return node.scrollHeight - node.scrollTop - node.clientHeight < SLACK;
}

export function Transcript(props: {
  conversation: Conversation;
  actions: ICodeActions;
}) {
  const { conversation, actions } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const content = useRef<HTMLDivElement>(null);
  const pinned = useRef(true);
  const lastTop = useRef(0);
  const turnCount = useRef(conversation.turns.length);
  const [away, setAway] = useState(false);

  const unpin = useCallback(() => {
    pinned.current = false;
    setAway(true);
  }, []);

  const follow = useCallback(() => {
    const node = scroller.current;
    if (!node || !pinned.current) {
      return;
    }
    // the user scrolled up and its scroll event has not come yet: stay, do not snap back
    if (node.scrollTop < lastTop.current - 1 && !atBottom(node)) {
      unpin();
      return;
    }
    node.scrollTop = node.scrollHeight;
    lastTop.current = node.scrollTop;
  }, [unpin]);

  const jump = useCallback(() => {
    pinned.current = true;
    setAway(false);
    follow();
  }, [follow]);

  // a new turn (the user asked something): follow it, wherever the view was
  useLayoutEffect(() => {
    if (conversation.turns.length !== turnCount.current) {
      turnCount.current = conversation.turns.length;
      pinned.current = true;
      setAway(false);
    }
    follow();
  });

  // markdown and code render after React's commit: follow what they add too
  useEffect(() => {
    const node = content.current;
    if (!node || typeof ResizeObserver === 'undefined') {
      return;
    }
    const observer = new ResizeObserver(() => follow());
    observer.observe(node);
    return () => observer.disconnect();
  }, [follow]);

  const cellLabel = cellLabels(conversation);
  return (
    <div className="jp-Devstral-transcriptArea">
      <div
        className="jp-Devstral-transcript"
        ref={scroller}
        onWheel={event => {
          // up while the text streams: stay (the scroll event re-pins at the bottom)
          if (event.deltaY < 0 && event.currentTarget.scrollTop > 0) {
            unpin();
          }
        }}
        onScroll={event => {
          const node = event.currentTarget;
          if (atBottom(node)) {
            pinned.current = true;
          } else if (node.scrollTop < lastTop.current - 1) {
            pinned.current = false; // the user scrolled up (growing content moves nothing)
          }
          lastTop.current = node.scrollTop;
          setAway(!pinned.current);
        }}
      >
        <div className="jp-Devstral-transcriptContent" ref={content}>
          {conversation.turns.length === 0 && (
            <div className="jp-Devstral-empty">
              Ask about this notebook, or switch to Agent to let Devstral edit
              and run its cells.
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
                cellLabel={cellLabel}
              />
            </React.Fragment>
          ))}
        </div>
      </div>
      {away && (
        <button
          type="button"
          className="jp-Devstral-jump"
          title="Scroll to the newest message"
          onClick={jump}
        >
          Jump to latest ↓
        </button>
      )}
    </div>
  );
}
