import * as fs from 'fs';
import * as path from 'path';

import { KnownEvent, parseServer } from '../protocol';
import { applyEvent, applyOtherEvent, newTurn } from '../turns';

const fixture = JSON.parse(
  fs.readFileSync(
    path.resolve(
      __dirname,
      '..',
      '..',
      '..',
      'tests',
      'fixtures',
      'protocol.json'
    ),
    'utf-8'
  )
);

function event(kind: string, data: object, ts?: number): KnownEvent {
  return parseServer({
    type: 'event',
    turn: 't',
    kind,
    data,
    ts
  }) as KnownEvent;
}

describe('applyEvent', () => {
  it('builds a turn from the fixture events', () => {
    const turn = newTurn('What does cell 3 compute?', 'agent');
    for (const msg of fixture.server) {
      if (msg.type === 'event') {
        applyEvent(turn, parseServer(msg) as KnownEvent);
      }
    }
    expect(turn.done).toBe(true);
    expect(turn.reason).toBe('fixed');
    expect(turn.usage).toEqual({
      prompt: 812,
      completion: 40,
      cached: 700,
      calls: 1
    });
    const kinds = turn.parts.map(p =>
      p.kind === 'text' ? 'text' : p.card.tool
    );
    expect(kinds).toEqual(['status', 'text', 'edit_cell', 'attempt']);
    const edit = turn.parts[2];
    expect(edit.kind === 'card' && edit.card.result).toEqual({
      ok: true,
      text: 'Edited. The cell ran without error.'
    });
  });

  it('joins streamed text and remembers the first ts', () => {
    const turn = newTurn('hi', 'ask');
    applyEvent(turn, event('text', { text: 'Hel' }, 100));
    applyEvent(turn, event('text', { text: 'lo' }, 200));
    expect(turn.parts).toEqual([{ kind: 'text', text: 'Hello' }]);
    expect(turn.firstText).toEqual({ ts: 100 });
  });

  it('sums usage over model calls', () => {
    const turn = newTurn('hi', 'agent');
    applyEvent(
      turn,
      event('usage', { prompt_tokens: 10, completion_tokens: 2 })
    );
    applyEvent(
      turn,
      event('usage', {
        prompt_tokens: 5,
        completion_tokens: 3,
        cached_tokens: 4
      })
    );
    expect(turn.usage).toEqual({
      prompt: 15,
      completion: 5,
      cached: 4,
      calls: 2
    });
  });

  it('shows attempt_start as status', () => {
    const turn = newTurn('fix', 'fix');
    applyOtherEvent(turn, 'attempt_start', { iteration: 2, of: 3 });
    expect(turn.status).toBe('attempt 2/3');
  });
});
