/**
 * Stored turns (a reload or a restart shows the chat again) and "What was sent" as text:
 * a turn goes to the server as plain JSON and comes back the same, with nothing left
 * waiting; a request shows as text with its placeholders, nothing rendered.
 */
import { sentHeading, sentText } from '../sent';
import {
  INTERRUPTED_RUN,
  addHelperRun,
  helperLine,
  turnFromRecord,
  turnRecord
} from '../records';
import { IProposal, ITurn, addCard, newTurn } from '../turns';

describe('stored turns', () => {
  it('round-trip as plain JSON, with approvals no longer pending', () => {
    const turn: ITurn = newTurn('delete it', 'agent');
    addCard(turn, {
      tool: 'delete_cell',
      title: 'delete',
      approval: 'pending'
    });
    turn.parts.unshift({ kind: 'text', text: 'Sure.' });
    turn.done = true;
    turn.reason = 'rejected';
    turn.sent = [{ host: 'h', messages: [{ role: 'user', content: 'x' }] }];
    turn.firstText = { ts: 1 };
    const record = turnRecord(turn);
    expect(record.firstText).toBeUndefined();
    const back = turnFromRecord(JSON.parse(JSON.stringify(record)))!;
    expect(back.restored).toBe(true);
    expect(back.request).toBe('delete it');
    expect(back.parts[0]).toEqual({ kind: 'text', text: 'Sure.' });
    const card = back.parts[1].kind === 'card' ? back.parts[1].card : null;
    expect(card!.approval).toBe('expired');
    expect(back.sent).toEqual(turn.sent);
  });

  it('never makes a clicked proposal clickable again', () => {
    const proposal = (state?: IProposal['state'], result?: string) => ({
      source: "os.remove('raw.csv')",
      action: 'propose' as const,
      note: 'it deletes raw.csv',
      effects: ['deletes raw.csv'],
      diff: '',
      state,
      result
    });
    const turn = newTurn('fix', 'fix');
    turn.done = true;
    turn.proposals = [
      proposal('running'),
      proposal('ran', 'ran [3]'),
      proposal('failed', 'ZeroDivisionError: division by zero'),
      proposal()
    ];
    const record = JSON.parse(JSON.stringify(turnRecord(turn)));
    record.proposals.push({ ...proposal(), state: 'queued' }); // unknown: as if running
    const back = turnFromRecord(record)!;
    expect(back.proposals!.map(p => [p.state, p.result])).toEqual([
      ['failed', INTERRUPTED_RUN],
      ['ran', 'ran [3]'],
      ['failed', 'ZeroDivisionError: division by zero'],
      [undefined, undefined],
      ['failed', INTERRUPTED_RUN]
    ]);
    expect(INTERRUPTED_RUN).toBe(
      'the run was interrupted; check the cell before running it again'
    );
  });

  it('refuses what is not a turn', () => {
    expect(turnFromRecord(null)).toBeNull();
    expect(turnFromRecord({ id: 't', mode: 'yolo' })).toBeNull();
    const bare = turnFromRecord({
      id: 't',
      mode: 'ask',
      parts: [{ kind: 'x' }]
    })!;
    expect(bare.parts).toEqual([]);
    expect(bare.done).toBe(true);
  });

  it('counts the agent helper code runs in one quiet line', () => {
    const turn = newTurn('fix', 'fix');
    addHelperRun(turn, 'ship the helper modules');
    addHelperRun(turn, 'try a candidate in a fork');
    addHelperRun(turn, 'try a candidate in a fork');
    expect(helperLine(turn)).toBe(
      'ship the helper modules, try a candidate in a fork ×2'
    );
  });
});

describe('What was sent', () => {
  it('is plain text with the placeholders', () => {
    const record = {
      backend: 'openai_compat',
      model: 'stub-model',
      host: 'http://127.0.0.1:8000/v1',
      time: '2026-01-01T00:00:00+00:00',
      options: { temperature: 0.2, max_tokens: 800, seed: null },
      tools: [{ type: 'function', function: { name: 'edit_cell' } }],
      redacted: { '<secret:API_KEY>': 'secret_variable' },
      messages: [
        { role: 'system', content: 'You are Devstral.' },
        { role: 'user', content: 'API_KEY = "<secret:API_KEY>"\n<b>hi</b>' },
        {
          role: 'assistant',
          content: '',
          tool_calls: [{ id: '1', function: { name: 'edit_cell' } }]
        }
      ]
    };
    const text = sentText(record);
    expect(text).toContain('to: http://127.0.0.1:8000/v1');
    expect(text).toContain('options: temperature=0.2 max_tokens=800');
    expect(text).not.toContain('seed');
    expect(text).toContain('tools: edit_cell');
    expect(text).toContain(
      'secrets replaced: <secret:API_KEY> (secret_variable)'
    );
    expect(text).toContain(
      '--- user ---\nAPI_KEY = "<secret:API_KEY>"\n<b>hi</b>'
    );
    expect(text).toContain('tool calls: ');
    expect(sentHeading(record, 0)).toBe(
      'request 1: http://127.0.0.1:8000/v1 · stub-model · 3 messages'
    );
  });
});
