/** Context chips, the Ask/Agent toggle, the input, Send and Stop. */
import React, { useState } from 'react';

import type { Conversation } from '../conversation';
import { CHIPS, MODES } from '../protocol';

const MODE_LABELS = { ask: 'Ask', agent: 'Agent' };

export function Composer(props: {
  conversation: Conversation | null;
}): JSX.Element {
  const { conversation } = props;
  const [text, setText] = useState(conversation?.draft ?? '');
  const running = !!conversation?.running;
  const states = conversation?.chipStates;
  const canSend = !!conversation && !running && text.trim() !== '';
  const send = () => {
    if (conversation && canSend) {
      void conversation.send(text.trim());
      conversation.draft = '';
      setText('');
    }
  };
  return (
    <div className="jp-Devstral-composer">
      <div className="jp-Devstral-chips" role="group" aria-label="context sent">
        <span className="jp-Devstral-chipsLabel">sends</span>
        {CHIPS.map(chip => {
          const state = states?.[chip];
          const available = !!state?.available;
          const wanted = conversation?.chips[chip] ?? false;
          const on = wanted && available;
          return (
            <button
              key={chip}
              type="button"
              className={'jp-Devstral-chip' + (on ? ' jp-mod-active' : '')}
              data-chip={chip}
              data-available={available ? 'true' : 'false'}
              aria-pressed={on}
              disabled={!conversation || !available}
              title={
                available
                  ? `${on ? 'Sent' : 'Not sent'} with your message: click to ${on ? 'leave it out' : 'send it'}`
                  : (state?.why ?? '')
              }
              onClick={() => conversation?.setChip(chip, !wanted)}
            >
              {state?.label ?? chip}
            </button>
          );
        })}
      </div>
      <textarea
        className="jp-Devstral-input"
        placeholder={
          conversation
            ? conversation.mode === 'agent'
              ? 'Tell Devstral what to change (Enter sends, Shift+Enter for a new line)'
              : 'Ask about this notebook (Enter sends, Shift+Enter for a new line)'
            : 'Open a notebook first'
        }
        disabled={!conversation}
        value={text}
        rows={3}
        onChange={e => {
          setText(e.currentTarget.value);
          if (conversation) {
            conversation.draft = e.currentTarget.value;
          }
        }}
        onKeyDown={e => {
          if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            send();
          }
        }}
      />
      <div className="jp-Devstral-actions">
        <div className="jp-Devstral-modes" role="group" aria-label="mode">
          {MODES.map(mode => {
            const on = conversation?.mode === mode;
            return (
              <button
                key={mode}
                type="button"
                className={'jp-Devstral-mode' + (on ? ' jp-mod-active' : '')}
                data-mode={mode}
                aria-pressed={on}
                disabled={!conversation}
                onClick={() => conversation?.setMode(mode)}
              >
                {MODE_LABELS[mode]}
              </button>
            );
          })}
        </div>
        <button
          type="button"
          className="jp-Devstral-stop"
          disabled={!running}
          onClick={() => conversation?.stop()}
        >
          Stop
        </button>
        <button
          type="button"
          className="jp-Devstral-send jp-mod-accept"
          disabled={!canSend}
          onClick={send}
        >
          Send
        </button>
      </div>
    </div>
  );
}
