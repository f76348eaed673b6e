/** Context chips, the Ask/Agent toggle, the input, Send and Stop. */
import React, { useState } from 'react';

import type { Conversation } from '../conversation';
import { CHIPS, Chip, MODES } from '../protocol';

const CHIP_LABELS: Record<Chip, string> = {
  notebook: 'notebook',
  active_cell: 'active cell',
  selection: 'selection',
  errors: 'errors'
};

const MODE_LABELS = { ask: 'Ask', agent: 'Agent' };

export function Composer(props: {
  conversation: Conversation | null;
}): JSX.Element {
  const { conversation } = props;
  const [text, setText] = useState(conversation?.draft ?? '');
  const running = !!conversation?.running;
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
      <div className="jp-Devstral-chips" role="group" aria-label="context">
        {CHIPS.map(chip => {
          const on = conversation?.chips[chip] ?? false;
          return (
            <button
              key={chip}
              type="button"
              className={'jp-Devstral-chip' + (on ? ' jp-mod-active' : '')}
              data-chip={chip}
              aria-pressed={on}
              disabled={!conversation}
              onClick={() => conversation?.setChip(chip, !on)}
            >
              {CHIP_LABELS[chip]}
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
