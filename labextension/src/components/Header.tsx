/**
 * The header: the chat's model (a menu of what the server offers), the status line with
 * the real prompt size, the notebook's chats (New chat, earlier ones), the notebook's edit
 * and run policies, Undo; and, when no model can run, one notice saying what to set.
 */
import React from 'react';

import type { IModelChoice } from '../api';
import type { Conversation } from '../conversation';
import type { Policy } from '../protocol';
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
  if (conversation.problem) {
    return 'no model';
  }
  switch (conversation.connection) {
    case 'connecting':
      return 'connecting';
    case 'ready': {
      const prompt = conversation.lastPrompt;
      return prompt
        ? `ready · last prompt ${prompt.toLocaleString()} tokens`
        : 'ready';
    }
    case 'closed':
      return 'disconnected';
    default:
      return 'idle';
  }
}

const choiceKey = (c: { backend: string; model: string }) =>
  `${c.backend}\u0000${c.model}`;

function ModelPicker(props: {
  conversation: Conversation | null;
  server: ServerStatus;
}): JSX.Element {
  const { conversation, server } = props;
  const label = modelLabel(conversation, server);
  const choices: IModelChoice[] = server.models?.models ?? [];
  if (!conversation || choices.length === 0) {
    return (
      <span className="jp-Devstral-model" title="backend · model">
        {label}
      </span>
    );
  }
  const current = choices.find(
    c =>
      c.backend === conversation.backend &&
      (c.name === conversation.model || c.model === conversation.model)
  );
  return (
    <select
      className="jp-Devstral-model jp-Devstral-modelPicker"
      title={`This chat's model${server.models?.restricted ? ' (the list is set by your admin)' : ''}`}
      value={current ? choiceKey(current) : ''}
      disabled={!!conversation.running}
      onChange={e => {
        const pick = choices.find(c => choiceKey(c) === e.currentTarget.value);
        if (pick) {
          void conversation.chooseModel(pick.backend, pick.model);
        }
      }}
    >
      {!current && (
        <option value="">
          {conversation.problem ? 'choose a model…' : label}
        </option>
      )}
      {choices.map(c => (
        <option key={choiceKey(c)} value={choiceKey(c)}>
          {c.backend} · {c.name}
          {c.configured ? ' (server default)' : ''}
        </option>
      ))}
    </select>
  );
}

/** The first sentence of a problem: what to set (the rest is detail). */
export function firstSentence(text: string): { head: string; rest: string } {
  const match = /^(.*?[.!?])\s+(?=[A-Z$])/.exec(text);
  if (!match) {
    return { head: text, rest: '' };
  }
  return { head: match[1], rest: text.slice(match[0].length) };
}

/** One visible notice when no model can run: what to set, or what to pick. */
export function SetupNotice(props: {
  problem: string;
  canPick: boolean;
}): JSX.Element {
  const { head, rest } = firstSentence(props.problem);
  return (
    <div className="jp-Devstral-setup" role="alert">
      <div className="jp-Devstral-setupTitle">Devstral has no model to run</div>
      <div className="jp-Devstral-setupText">{head}</div>
      {props.canPick && (
        <div className="jp-Devstral-setupHint">
          Or pick a model for this chat in the menu above.
        </div>
      )}
      {rest && (
        <details className="jp-Devstral-setupMore">
          <summary>more</summary>
          {rest}
        </details>
      )}
    </div>
  );
}

function PolicySelect(props: {
  label: string;
  className: string;
  value: Policy;
  title: string;
  onChange(value: Policy): void;
}): JSX.Element {
  return (
    <label className="jp-Devstral-policy" title={props.title}>
      {props.label}
      <select
        className={props.className}
        value={props.value}
        onChange={e => props.onChange(e.currentTarget.value as Policy)}
      >
        <option value="ask">ask</option>
        <option value="auto">auto</option>
      </select>
    </label>
  );
}

function when(seconds: number | null): string {
  if (!seconds) {
    return '';
  }
  const date = new Date(seconds * 1000);
  return date.toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit'
  });
}

export function Header(props: {
  conversation: Conversation | null;
  server: ServerStatus;
}): JSX.Element {
  const { conversation, server } = props;
  const running = !!conversation?.running;
  const problem = conversation
    ? conversation.problem
    : (server.status?.problem ?? null);
  const canPick = (server.models?.models.length ?? 0) > 0;
  return (
    <div className="jp-Devstral-header">
      <div className="jp-Devstral-headerRow">
        <ModelPicker conversation={conversation} server={server} />
        <span
          className="jp-Devstral-status"
          data-connection={conversation?.connection ?? 'none'}
          data-running={running ? 'true' : 'false'}
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
          <select
            className="jp-Devstral-chats"
            title="This notebook's chats"
            value={conversation.id}
            disabled={running || conversation.chats.length < 2}
            onChange={e => void conversation.openChat(e.currentTarget.value)}
          >
            {conversation.chats.length === 0 && <option value="">chat</option>}
            {conversation.chats.map(c => (
              <option key={c.id} value={c.id}>
                {(c.title || 'New chat').slice(0, 40)}
                {c.updated ? ` · ${when(c.updated)}` : ''}
              </option>
            ))}
          </select>
          <button
            type="button"
            className="jp-Devstral-newChat"
            title="Start a new chat for this notebook (this one stays in the list)"
            disabled={running || conversation.turns.length === 0}
            onClick={() => void conversation.newChat()}
          >
            New chat
          </button>
        </div>
      )}
      {conversation && (
        <div className="jp-Devstral-headerRow">
          <PolicySelect
            label="edits"
            className="jp-Devstral-editPolicy"
            value={conversation.policies.edit}
            title="Agent edits and inserted cells: ask (Approve/Reject) or auto. Deletes always ask. Remembered for this notebook."
            onChange={edit => conversation.setPolicies({ edit })}
          />
          <PolicySelect
            label="runs"
            className="jp-Devstral-runPolicy"
            value={conversation.policies.run}
            title="Agent runs of cells: ask (Approve/Reject) or auto. Code outside a cell always asks. Remembered for this notebook."
            onChange={run => conversation.setPolicies({ run })}
          />
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
      {problem && <SetupNotice problem={problem} canPick={canPick} />}
    </div>
  );
}
