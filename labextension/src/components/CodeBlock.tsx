/**
 * A fenced code block of a reply, highlighted like a code cell, with Copy, Insert below and
 * Replace cell (on the pinned notebook). Insert and Replace wait until the block is complete.
 */
import { Clipboard } from '@jupyterlab/apputils';
import React, { useCallback, useRef, useState } from 'react';

import { useRenderedInto } from './hooks';
import { highlight } from './render';

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

/** Highlighted code; re-highlighted at most once a frame while it streams. */
export const CodeView = React.memo(function CodeView(props: {
  code: string;
  lang: string;
  className?: string;
}): JSX.Element {
  const ref = useRef<HTMLElement>(null);
  const value = `${props.lang}\n${props.code}`;
  const render = useCallback(async (host: HTMLElement, v: string) => {
    const at = v.indexOf('\n');
    const el = await highlight(v.slice(at + 1), v.slice(0, at));
    host.replaceChildren(...Array.from(el.childNodes));
  }, []);
  useRenderedInto(ref, value, render);
  return (
    <pre className={props.className ?? 'jp-Devstral-codeView'}>
      <code
        ref={ref}
        className="jp-Devstral-highlight"
        data-lang={props.lang || undefined}
      />
    </pre>
  );
});

export function CodeBlock(props: {
  code: string;
  lang: string;
  /** the closing fence arrived, or the reply ended */
  complete: boolean;
  actions: ICodeActions;
}): JSX.Element {
  const { code, lang, complete, actions } = props;
  const [copied, setCopied] = useState(false);
  const waiting = complete ? '' : ' (when the block is complete)';
  return (
    <div
      className="jp-Devstral-code"
      data-lang={lang || undefined}
      data-complete={complete ? 'true' : 'false'}
    >
      <div className="jp-Devstral-codeBar">
        <span className="jp-Devstral-codeLang">{lang || 'code'}</span>
        <button
          type="button"
          className="jp-Devstral-copy jp-Devstral-codeButton"
          title="Copy this code"
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
          className="jp-Devstral-insert jp-Devstral-codeButton"
          disabled={!actions.enabled || !complete}
          title={`Insert a code cell with this code below the active cell${waiting}`}
          onClick={() => actions.insertBelow(code)}
        >
          Insert below
        </button>
        <button
          type="button"
          className="jp-Devstral-replace jp-Devstral-codeButton"
          disabled={!actions.enabled || !complete}
          title={`Replace the active cell's source with this code${waiting}`}
          onClick={() => actions.replaceCell(code)}
        >
          Replace cell
        </button>
      </div>
      <CodeView code={code} lang={lang} />
    </div>
  );
}
