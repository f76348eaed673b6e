/** "What was sent" under a turn: each request as plain text, folded (never rendered). */
import React from 'react';

import type { ISentRecord } from '../protocol';
import { sentHeading, sentText } from '../sent';

export function WhatWasSent(props: {
  sent?: ISentRecord[];
  dropped?: boolean;
}): JSX.Element | null {
  const { sent, dropped } = props;
  if (dropped) {
    return (
      <div className="jp-Devstral-sent jp-mod-dropped">
        What was sent: not kept for older turns
      </div>
    );
  }
  if (!sent || sent.length === 0) {
    return null;
  }
  return (
    <details className="jp-Devstral-sent">
      <summary>
        What was sent ({sent.length} request{sent.length === 1 ? '' : 's'})
      </summary>
      {sent.map((record, i) => (
        <details
          key={i}
          className="jp-Devstral-sentRequest"
          open={sent.length === 1}
        >
          <summary>{sentHeading(record, i)}</summary>
          <pre className="jp-Devstral-sentText">{sentText(record)}</pre>
        </details>
      ))}
    </details>
  );
}
