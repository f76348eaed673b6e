/** A fenced code block with Copy, Insert below and Replace cell (on the pinned notebook). */
import { Clipboard } from '@jupyterlab/apputils';
import React, { useState } from 'react';

export interface ICodeActions {
  /** false when the conversation's notebook is closed */
  enabled: boolean;
  insertBelow(code: string): void;
  replaceCell(code: string): void;
}

async function copy(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    Clipboard.copyToSystem(text);
  }
}

export function CodeBlock(props: {
  code: string;
  lang: string;
  closed: boolean;
  actions: ICodeActions;
}): JSX.Element {
  const { code, lang, closed, actions } = props;
  const [copied, setCopied] = useState(false);
  return (
    <div className="jp-Devstral-code" data-lang={lang || undefined}>
      <div className="jp-Devstral-codeBar">
        <span className="jp-Devstral-codeLang">{lang || 'code'}</span>
        <button
          type="button"
          className="jp-Devstral-copy"
          onClick={() => {
            void copy(code).then(() => {
              setCopied(true);
              setTimeout(() => setCopied(false), 1200);
            });
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
        <button
          type="button"
          className="jp-Devstral-insert"
          disabled={!actions.enabled || !closed}
          title="Insert a code cell with this code below the active cell"
          onClick={() => actions.insertBelow(code)}
        >
          Insert below
        </button>
        <button
          type="button"
          className="jp-Devstral-replace"
          disabled={!actions.enabled || !closed}
          title="Replace the active cell's source with this code"
          onClick={() => actions.replaceCell(code)}
        >
          Replace cell
        </button>
      </div>
      <pre>
        <code>{code}</code>
      </pre>
    </div>
  );
}
