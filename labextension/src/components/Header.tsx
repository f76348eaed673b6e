/** Model label, status line, notebook pin, policies and Undo. */
import React from 'react';

import type { Conversation } from '../conversation';
import type { ServerStatus } from '../serverStatus';

function modelLabel(
  conversation: Conversation | null,
  server: ServerStatus
): string {
  if (conversation?.model) {
    return `${conversation.backend} · ${conversation.model}`;
  }
  const status = server.status;
  if (status?.model) {
    return `${status.backend} · ${status.model}${status.loaded ? '' : ' (not loaded)'}`;
  }
  return 'no model';
}

function statusLine(
  conversation: Conversation | null,
  server: ServerStatus
): string {
  if (!conversation) {
    return server.status ? 'open a notebook to start' : 'server not reachable';
  }
  const turn = conversation.running;
  if (turn) {
    return turn.status || 'working';
  }
  switch (conversation.connection) {
    case 'connecting':
      return 'connecting';
    case 'ready':
      return 'ready';
    case 'closed':
      return 'disconnected';
    default:
      return 'idle';
  }
}

export function Header(props: {
  conversation: Conversation | null;
  server: ServerStatus;
}): JSX.Element {
  const { conversation, server } = props;
  return (
    <div className="jp-Devstral-header">
      <div className="jp-Devstral-headerRow">
        <span className="jp-Devstral-model" title="backend · model">
          {modelLabel(conversation, server)}
        </span>
        <span
          className="jp-Devstral-status"
          data-connection={conversation?.connection ?? 'none'}
          data-running={conversation?.running ? 'true' : 'false'}
        >
          {statusLine(conversation, server)}
        </span>
      </div>
      {conversation && (
        <div className="jp-Devstral-headerRow">
          <span className="jp-Devstral-notebook" title={conversation.path}>
            {conversation.path}
            {conversation.panel ? '' : ' (closed)'}
          </span>
          <label className="jp-Devstral-policy">
            edits
            <select
              className="jp-Devstral-editPolicy"
              value={conversation.editPolicy}
              onChange={e =>
                conversation.setPolicies({
                  edit: e.currentTarget.value as 'auto' | 'ask'
                })
              }
            >
              <option value="auto">auto</option>
              <option value="ask">ask</option>
            </select>
          </label>
          <label className="jp-Devstral-policy">
            runs
            <select
              className="jp-Devstral-runPolicy"
              value={conversation.runPolicy}
              onChange={e =>
                conversation.setPolicies({
                  run: e.currentTarget.value as 'auto' | 'ask'
                })
              }
            >
              <option value="ask">ask</option>
              <option value="auto">auto</option>
            </select>
          </label>
          {conversation.canUndo && (
            <button
              type="button"
              className="jp-Devstral-undo"
              title="Put the notebook back as it was before the last agent turn"
              onClick={() => conversation.undoTurn()}
            >
              Undo agent turn
            </button>
          )}
        </div>
      )}
    </div>
  );
}
