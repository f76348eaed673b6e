import * as fs from 'fs';
import * as path from 'path';

import { KnownEvent, parseServer } from '../protocol';
import { ICard, addCard, applyEvent, applyOtherEvent, newTurn } from '../turns';

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
      if (msg.type === 'event' && msg.turn === 't-1') {
        applyEvent(turn, parseServer(msg) as KnownEvent);
      }
    }
    expect(turn.done).toBe(true);
    expect(turn.reason).toBe('fixed');
    expect(turn.usage).toEqual({
      prompt: 812,
      completion: 40,
      cached: 700,
      calls: 1,
      last_prompt: 812
    });
    const kinds = turn.parts.map(p =>
      p.kind === 'text' ? 'text' : p.card.tool
    );
    // status events are the turn's status line, not cards
    expect(kinds).toEqual(['text', 'edit_cell']);
    const edit = turn.parts[1];
    expect(edit.kind === 'card' && edit.card.result).toEqual({
      ok: true,
      text: 'Edited. The cell ran without error.'
    });
    expect(turn.sent).toHaveLength(1);
    expect(JSON.stringify(turn.sent)).toContain('<secret:API_KEY>');
  });

  it('builds a fix turn: attempts, proposals, the label and the offer', () => {
    const turn = newTurn('Fix', 'fix', 'a1b2');
    for (const msg of fixture.server) {
      if (msg.type === 'event' && msg.turn === 't-2') {
        applyEvent(turn, parseServer(msg) as KnownEvent);
      }
    }
    const attempts = cards(turn).filter(c => c.attempt);
    expect(attempts).toHaveLength(1);
    const candidates = attempts[0].attempt!.candidates;
    expect(candidates.map(c => c.status)).toEqual([undefined, 'proposed']);
    expect(candidates[1].result!.text).toBe(
      'not tried: needs approval: it deletes files'
    );
    expect(turn.proposals).toHaveLength(1);
    expect(turn.proposals![0].note).toContain('deletes files');
    expect(turn.label).toBe('runs, review');
    expect(turn.reasons).toEqual(['a dropped call (print)']);
    expect(turn.offer).toEqual({
      source: 'total = sum(prices)',
      diff: expect.stringContaining('+total = sum(prices)')
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
      calls: 2,
      last_prompt: 5
    });
  });

  it('shows attempt_start as status', () => {
    const turn = newTurn('fix', 'fix');
    applyOtherEvent(turn, 'attempt_start', { iteration: 2, of: 3 });
    expect(turn.status).toBe('attempt 2/3');
  });
});

function cards(turn: ReturnType<typeof newTurn>): ICard[] {
  return turn.parts.flatMap(p => (p.kind === 'card' ? [p.card] : []));
}

describe('one card per step', () => {
  it('an edit_cell call, its edit, its run and its result share one card', () => {
    const turn = newTurn('fix the typo', 'agent');
    applyEvent(turn, event('text', { text: 'I will fix it.' }));
    const args = { cell_id: 'c1', source: 'x = 2' };
    applyEvent(
      turn,
      event('tool_call', { name: 'edit_cell', arguments: args })
    );
    // the ops the call causes, as agentOps adds them
    const edit = addCard(turn, {
      tool: 'replace_source',
      title: 'edit cell 1',
      args,
      diff: [{ op: '+', text: 'x = 2' }]
    });
    edit.result = { ok: true, text: 'edited' };
    const run = addCard(turn, {
      tool: 'run_cell',
      title: 'run cell 1',
      args: { cell_id: 'c1', timeout: 60 }
    });
    expect(run).toBe(edit);
    run.result = { ok: true, text: 'ran [3]' };
    applyEvent(
      turn,
      event('tool_result', {
        name: 'edit_cell',
        ok: true,
        text: 'Edited. The cell ran without error.'
      })
    );
    const [card] = cards(turn);
    expect(cards(turn)).toHaveLength(1);
    expect(card).toMatchObject({
      call: 'edit_cell',
      ops: ['replace_source', 'run_cell'],
      answered: true,
      diff: [{ op: '+', text: 'x = 2' }],
      result: { ok: true, text: 'Edited. The cell ran without error.' }
    });
  });

  it('a new call after an answered one gets its own card', () => {
    const turn = newTurn('look', 'agent');
    applyEvent(turn, event('tool_call', { name: 'list_cells', arguments: {} }));
    applyEvent(
      turn,
      event('tool_result', { name: 'list_cells', ok: true, text: '1. x' })
    );
    applyEvent(
      turn,
      event('tool_call', { name: 'run_cell', arguments: { cell_id: 'c1' } })
    );
    addCard(turn, { tool: 'run_cell', title: 'run cell 1', args: {} });
    expect(cards(turn).map(c => c.call)).toEqual(['list_cells', 'run_cell']);
  });

  it('an op waiting for approval is never joined', () => {
    const turn = newTurn('edit', 'agent');
    const first = addCard(turn, {
      tool: 'replace_source',
      title: 'edit cell 1',
      args: { cell_id: 'c1' }
    });
    first.approval = 'pending';
    const second = addCard(turn, {
      tool: 'run_cell',
      title: 'run cell 1',
      args: { cell_id: 'c1' }
    });
    expect(second).not.toBe(first);
  });
});

describe('fix turns', () => {
  it('show one card per attempt, candidates inside, no raw replies', () => {
    const turn = newTurn('Fix with Devstral: cell 2', 'fix', 'c2');
    applyEvent(turn, event('status', { text: 'building context' }));
    for (const iteration of [1, 2]) {
      applyOtherEvent(turn, 'attempt_start', { iteration, of: 3 });
      for (const sample of [0, 1]) {
        applyEvent(turn, event('text', { text: '```python\nx = 1\n```' }));
        applyEvent(
          turn,
          event('tool_call', {
            name: 'edit_cell',
            arguments: { cell_id: 'c2', source: `x = ${iteration}${sample}` }
          })
        );
        const ok = iteration === 2 && sample === 1;
        applyEvent(
          turn,
          event('attempt', {
            iteration,
            sample,
            ok,
            error: ok ? '' : "NameError: name 'y' is not defined"
          })
        );
      }
      if (iteration === 1) {
        applyEvent(
          turn,
          event('tool_result', {
            name: 'edit_cell',
            ok: false,
            text: 'The cell failed.\nNameError'
          })
        );
      }
    }
    // the winner is applied: an edit op, then its run
    const edit = addCard(turn, {
      tool: 'replace_source',
      title: 'edit cell 2',
      args: { cell_id: 'c2', source: 'x = 21' }
    });
    edit.result = { ok: true, text: 'edited' };
    expect(
      addCard(turn, {
        tool: 'run_cell',
        title: 'run cell 2',
        args: { cell_id: 'c2', timeout: 60 }
      })
    ).toBe(edit);
    applyEvent(
      turn,
      event('stopped', { reason: 'fixed', message: 'the cell runs now' })
    );

    expect(turn.parts.every(p => p.kind === 'card')).toBe(true);
    const [first, second, applied] = cards(turn);
    expect(cards(turn)).toHaveLength(3);
    expect(first.attempt).toMatchObject({
      iteration: 1,
      of: 3,
      feedback: 'The cell failed.\nNameError'
    });
    expect(first.attempt!.candidates.map(c => c.source)).toEqual([
      'x = 10',
      'x = 11'
    ]);
    expect(first.result).toEqual({
      ok: false,
      text: "NameError: name 'y' is not defined"
    });
    expect(second.result).toEqual({ ok: true, text: 'candidate 2 runs' });
    expect(first.running || second.running).toBeFalsy();
    expect(applied.ops).toEqual(['replace_source', 'run_cell']);
  });
});
