/** The sidebar's root: the current notebook's conversation, or a hint when none is open. */
import React, { useEffect, useState } from 'react';

import type { Conversation } from '../conversation';
import type { Conversations } from '../conversations';
import type { ServerStatus } from '../serverStatus';
import { recordTiming } from '../timings';
import type { ICodeActions } from './CodeBlock';
import { Composer } from './Composer';
import { Header } from './Header';
import { useSignal } from './hooks';
import { Transcript } from './Transcript';

function ErrorNotice(props: { text: string; dismiss(): void }) {
  return (
    <div className="jp-Devstral-error" role="alert" title={props.text}>
      <span className="jp-Devstral-errorText">{props.text}</span>
      <button
        type="button"
        className="jp-Devstral-dismiss"
        aria-label="dismiss"
        onClick={props.dismiss}
      >
        ×
      </button>
    </div>
  );
}

function codeActions(conversation: Conversation): ICodeActions {
  return {
    enabled: !!conversation.panel,
    insertBelow: code => conversation.insertBelow(code),
    replaceCell: code => conversation.replaceActive(code)
  };
}

export function DevstralPanel(props: {
  conversations: Conversations;
  server: ServerStatus;
}): JSX.Element {
  const { conversations, server } = props;
  const [conversation, setConversation] = useState(conversations.current);
  useEffect(() => {
    const follow = (_: unknown, next: Conversation | null) =>
      setConversation(next);
    conversations.currentChanged.connect(follow);
    setConversation(conversations.current);
    return () => {
      conversations.currentChanged.disconnect(follow);
    };
  }, [conversations]);
  useSignal(conversation?.changed);
  useSignal(server.changed);

  // after each commit: the first text of a turn is on screen now (latency bench)
  useEffect(() => {
    for (const t of conversation?.takeRenderTimings() ?? []) {
      recordTiming({ ts: t.ts, rendered: Date.now(), turn: t.turn });
    }
  });

  // the status request's failure explains a socket failure best; a working socket outdates it
  const serverError =
    conversation?.connection === 'ready' ? null : server.error;
  const error = serverError ?? conversation?.error ?? null;
  return (
    <div className="jp-Devstral-panel" data-conversation={conversation?.id}>
      <Header conversation={conversation} server={server} />
      {error && (
        <ErrorNotice
          text={error}
          dismiss={() =>
            serverError ? server.dismissError() : conversation?.dismissError()
          }
        />
      )}
      {conversation ? (
        <Transcript
          conversation={conversation}
          actions={codeActions(conversation)}
        />
      ) : (
        <div className="jp-Devstral-transcript">
          <div className="jp-Devstral-empty">
            Open a notebook: each notebook has its own Devstral conversation.
          </div>
        </div>
      )}
      <Composer key={conversation?.id ?? 'none'} conversation={conversation} />
    </div>
  );
}
