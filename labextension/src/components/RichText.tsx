/**
 * The model's reply rendered by JupyterLab: markdown blocks through the rendermime registry
 * (sanitized), fenced code blocks highlighted like cells with their actions. While the reply
 * streams, finished blocks keep their DOM and only the growing tail renders again.
 */
import React, { useRef } from 'react';

import { renderBlocks } from '../markdown';
import { CodeBlock, ICodeActions } from './CodeBlock';
import { useRenderedInto } from './hooks';
import { renderMarkdownInto } from './render';

const MarkdownBlock = React.memo(function MarkdownBlock(props: {
  source: string;
}): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  useRenderedInto(ref, props.source, renderMarkdownInto);
  return (
    <div
      ref={ref}
      className="jp-Devstral-markdown jp-RenderedHTMLCommon jp-RenderedMarkdown"
    />
  );
});

export function RichText(props: {
  text: string;
  /** no more text will come: a fence never closed is complete all the same */
  ended: boolean;
  actions: ICodeActions;
}): JSX.Element {
  return (
    <div className="jp-Devstral-reply">
      {renderBlocks(props.text, props.ended).map(block =>
        block.kind === 'markdown' ? (
          <MarkdownBlock key={block.key} source={block.text} />
        ) : (
          <CodeBlock
            key={block.key}
            code={block.text}
            lang={block.lang}
            complete={block.complete}
            actions={props.actions}
          />
        )
      )}
    </div>
  );
}
