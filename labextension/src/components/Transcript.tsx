/**
 * The turns of a conversation: each a user message and the assistant's reply. The view
 * follows new content unless the user scrolled up; then "Jump to latest" brings it back.
 */
import React, { useCallback, useEffect, useLayoutEffect, useRef } from 'react';
import { useState } from 'react';

import type { Conversation } from '../conversation';
import { helperLine } from '../records';
import type { ITurn, IUsage } from '../turns';
import { Card, CellLabel } from './Card';
import type { ICodeActions } from './CodeBlock';
import { firstSentence } from './Header';
import { FixOutcome } from './Outcome';
import { RichText } from './RichText';
import { WhatWasSent } from './Sent';

export function usageText(u: IUsage): string {
  const cached = u.cached ? `, ${u.cached} cached` : '';
  const calls = u.calls > 1 ? ` in ${u.calls} calls` : '';
  return `${u.prompt} prompt + ${u.completion} completion tokens${cached}${calls}`;
}

/** What Fix does, said once on each Fix turn. */
export const FIX_NOTE =
  'Fix tries candidates in a fork of the kernel (your variables stay as they are); the ' +
  'one that passes is written into this cell and run once. Anything that would delete, ' +
  'write, launch or connect waits for you.';

/** Stop reasons that are the user's to act on, shown as a notice rather than a grey line. */
const NOTICE_REASONS = new Set(['no_model', 'backend_error']);

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
  const quiet = helperLine(turn);
  const notice = turn.done && NOTICE_REASONS.has(turn.reason ?? '');
  return (
    <div
      className="jp-Devstral-message"
      data-role="assistant"
      data-turn={turn.id}
      data-mode={turn.mode}
      data-done={turn.done ? 'true' : 'false'}
      data-reason={turn.done ? turn.reason : undefined}
      data-label={turn.label}
    >
      {turn.mode === 'fix' && turn.reason !== 'no_model' && (
        <div className="jp-Devstral-quiet jp-Devstral-fixNote">{FIX_NOTE}</div>
      )}
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
      {quiet && (
        <div
          className="jp-Devstral-quiet jp-Devstral-helper"
          title="The agent's own code, not the model's: no approval needed"
        >
          agent helper code in the kernel: {quiet}
        </div>
      )}
      {!turn.done && (
        <div className="jp-Devstral-working">{turn.status || 'working'}…</div>
      )}
      <FixOutcome
        turn={turn}
        canEdit={!!conversation.panel && !conversation.running}
        apply={() => conversation.applyOffer(turn)}
        runProposal={p => void conversation.runProposal(turn, p)}
      />
      {turn.done &&
        !turn.label &&
        (turn.stopMessage || turn.reason !== 'answered') && (
          <div
            className={
              'jp-Devstral-stopped' + (notice ? ' jp-Devstral-notice' : '')
            }
            data-reason={turn.reason}
            role={notice ? 'alert' : undefined}
          >
            {turn.reason === 'no_model' && turn.stopMessage
              ? firstSentence(turn.stopMessage).head
              : turn.stopMessage || turn.reason?.replace(/_/g, ' ')}
          </div>
        )}
      {turn.done && turn.reason === 'length' && (
        <button
          type="button"
          className="jp-Devstral-continue"
          disabled={!!conversation.running || turn !== lastTurn(conversation)}
          onClick={() => void conversation.continueTurn(turn)}
        >
          Continue
        </button>
      )}
      {turn.usage && (
        <div className="jp-Devstral-usage">
          {usageText(turn.usage)}
          {turn.usage.last_prompt
            ? ` · last prompt ${turn.usage.last_prompt} tokens`
            : ''}
        </div>
      )}
      {turn.done && <WhatWasSent sent={turn.sent} dropped={turn.sentDropped} />}
    </div>
  );
}

function lastTurn(conversation: Conversation): ITurn | undefined {
  return conversation.turns[conversation.turns.length - 1];
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
              and run its cells. This chat is kept with the notebook.
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
