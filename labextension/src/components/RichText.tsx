/** The model's reply as safe React text: paragraphs, `code`, **bold**, fenced code blocks. */
import React from 'react';

import { splitFences, splitInline } from '../markdown';
import { CodeBlock, ICodeActions } from './CodeBlock';

function Prose({ text }: { text: string }): JSX.Element {
  return (
    <div className="jp-Devstral-prose">
      {splitInline(text).map((span, i) =>
        span.kind === 'code' ? (
          <code key={i}>{span.text}</code>
        ) : span.kind === 'bold' ? (
          <strong key={i}>{span.text}</strong>
        ) : (
          <React.Fragment key={i}>{span.text}</React.Fragment>
        )
      )}
    </div>
  );
}

export function RichText(props: {
  text: string;
  actions: ICodeActions;
}): JSX.Element {
  return (
    <>
      {splitFences(props.text).map((segment, i) =>
        segment.kind === 'text' ? (
          <Prose key={i} text={segment.text} />
        ) : (
          <CodeBlock
            key={i}
            code={segment.code}
            lang={segment.lang}
            closed={segment.closed}
            actions={props.actions}
          />
        )
      )}
    </>
  );
}
