/**
 * An edit's diff as a card shows it: line numbers, changed words marked, long unchanged
 * stretches folded; lines wrap so the change stays visible in a narrow sidebar.
 */
import React from 'react';

import { IDiffLine, diffRows } from '../diff';

const OPS = { ' ': 'same', '-': 'del', '+': 'add' } as const;

export function Diff({ lines }: { lines: IDiffLine[] }): JSX.Element {
  const items = diffRows(lines);
  if (items.length === 0) {
    return <div className="jp-Devstral-diffEmpty">no change</div>;
  }
  return (
    <div className="jp-Devstral-diff" role="table" aria-label="changes">
      {items.map((item, i) =>
        'folded' in item ? (
          <div key={i} className="jp-Devstral-diffFold" role="row">
            ⋯ {item.folded} unchanged line{item.folded === 1 ? '' : 's'}
          </div>
        ) : (
          <div
            key={i}
            className="jp-Devstral-diffLine"
            data-op={OPS[item.op]}
            role="row"
          >
            <span className="jp-Devstral-diffNo" aria-hidden="true">
              {item.op === '+' ? '' : item.oldNo}
            </span>
            <span className="jp-Devstral-diffNo" aria-hidden="true">
              {item.op === '-' ? '' : item.newNo}
            </span>
            <span className="jp-Devstral-diffSign" aria-hidden="true">
              {item.op}
            </span>
            <span className="jp-Devstral-diffText">
              {item.spans.map((span, k) =>
                span.changed ? (
                  <mark key={k} className="jp-Devstral-diffWord">
                    {span.text}
                  </mark>
                ) : (
                  <React.Fragment key={k}>{span.text}</React.Fragment>
                )
              )}
              {item.spans.length === 0 ? '\u200b' : null}
            </span>
          </div>
        )
      )}
    </div>
  );
}
