import * as fs from 'fs';
import * as path from 'path';

import {
  CHIPS,
  CLIENT_TYPES,
  ClientMessage,
  EDIT_OPS,
  EVENT_KINDS,
  MODES,
  OPS,
  POLICIES,
  PROTOCOL_VERSION,
  ProtocolError,
  SERVER_TYPES,
  ServerMessage,
  approval,
  cancel,
  chat,
  claimProposal,
  fix,
  hello,
  opFailed,
  opOk,
  parseClient,
  parseServer,
  policy,
  saveTurn,
  setModel
} from '../protocol';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const fixture = JSON.parse(
  fs.readFileSync(
    path.join(ROOT, 'tests', 'fixtures', 'protocol.json'),
    'utf-8'
  )
);

/** Rebuild a client example with the builders (a type error here is a drift). */
function rebuild(example: any): ClientMessage {
  switch (example.type) {
    case 'hello': {
      const { type, version, conversation, notebook, ...extra } = example;
      void type;
      void version;
      return hello(conversation, notebook, extra);
    }
    case 'approval': {
      const request = { request: example.request, ops: example.ops } as any;
      return approval(request, example.approved);
    }
    case 'policy': {
      const { type, ...policies } = example;
      void type;
      return policy(policies);
    }
    case 'set_model':
      return setModel(example.backend, example.model);
    case 'save_turn':
      return saveTurn(example.turn, example.record);
    case 'chat':
      return chat(example.turn, example.text, example.mode, example.context);
    case 'fix':
      return fix(example.turn, example.cell_id);
    case 'cancel':
      return cancel(example.turn);
    case 'claim_proposal':
      return claimProposal(example.turn, example.index);
    case 'op_result':
      return example.ok
        ? opOk(example.op, example.value)
        : opFailed(example.op, example.error);
  }
  throw new Error(`no builder for ${example.type}`);
}

type Example = [string, any];
const serverExamples: Example[] = fixture.server.map((m: any) => [
  `${m.type} ${m.kind ?? m.name ?? ''}`,
  m
]);
const clientExamples: Example[] = fixture.client.map((m: any) => [m.type, m]);
const invalidExamples: Example[] = fixture.invalid_client.map((m: any) => [
  JSON.stringify(m),
  m
]);

describe('protocol fixture', () => {
  it('has this version', () => {
    expect(fixture.version).toBe(PROTOCOL_VERSION);
  });

  it.each(serverExamples)('parses server message %s', (_, example) => {
    const copy = JSON.parse(JSON.stringify(example));
    const msg: ServerMessage = parseServer(copy);
    expect(msg).toEqual(example);
  });

  it.each(clientExamples)('builds client message %s', (_, example) => {
    const built = rebuild(example);
    expect(built).toEqual(example);
    expect(parseClient(JSON.parse(JSON.stringify(built)))).toEqual(example);
  });

  it.each(invalidExamples)(
    'rejects invalid client message %s',
    (_, example) => {
      expect(() => parseClient(example)).toThrow(ProtocolError);
    }
  );

  it('covers every op and server message type', () => {
    const ops = new Set(
      fixture.server.filter((m: any) => m.type === 'op').map((m: any) => m.name)
    );
    expect([...ops].sort()).toEqual(Object.keys(OPS).sort());
    const types = new Set(fixture.server.map((m: any) => m.type));
    expect([...types].sort()).toEqual([...SERVER_TYPES].sort());
    const clients = new Set(fixture.client.map((m: any) => m.type));
    expect([...clients].sort()).toEqual([...CLIENT_TYPES].sort());
    const kinds = new Set(
      fixture.server
        .filter((m: any) => m.type === 'event')
        .map((m: any) => m.kind)
    );
    expect([...kinds].sort()).toEqual([...EVENT_KINDS].sort());
  });
});

describe('the Python twin', () => {
  const source = fs.readFileSync(
    path.join(ROOT, 'jupyter_devstral', 'server', 'protocol.py'),
    'utf-8'
  );
  const tuple = (name: string): string[] => {
    const match = new RegExp(`^${name} = \\(([^)]*)\\)`, 'm').exec(source);
    expect(match).not.toBeNull();
    return [...match![1].matchAll(/"(\w+)"/g)].map(m => m[1]);
  };

  it('has the same constants', () => {
    expect(source).toMatch(
      new RegExp(`^PROTOCOL_VERSION = ${PROTOCOL_VERSION}$`, 'm')
    );
    expect(tuple('CLIENT_TYPES')).toEqual([...CLIENT_TYPES]);
    expect(tuple('SERVER_TYPES')).toEqual([...SERVER_TYPES]);
    expect(tuple('MODES')).toEqual([...MODES]);
    expect(tuple('CHIPS')).toEqual([...CHIPS]);
    expect(tuple('EDIT_OPS')).toEqual([...EDIT_OPS]);
    expect(tuple('EVENT_KINDS')).toEqual([...EVENT_KINDS]);
    expect(tuple('POLICIES')).toEqual([...POLICIES]);
  });

  it('has the same ops, arguments and values', () => {
    const block = /^OPS[^{]*\{([\s\S]*?)^\}/m.exec(source)![1];
    const entries = [
      ...block.matchAll(/"(\w+)": \(\(([^)]*)\), \(([^)]*)\)\)/g)
    ];
    const ops = Object.fromEntries(
      entries.map(m => [
        m[1],
        {
          args: [...m[2].matchAll(/"(\w+)"/g)].map(a => a[1]),
          value: [...m[3].matchAll(/"(\w+)"/g)].map(a => a[1])
        }
      ])
    );
    expect(ops).toEqual(JSON.parse(JSON.stringify(OPS)));
  });
});

describe('parseServer', () => {
  it('keeps an optional numeric ts on events', () => {
    const msg = {
      type: 'event',
      turn: 't',
      kind: 'text',
      data: { text: 'x' },
      ts: 1.5e12
    };
    expect(parseServer(msg)).toEqual(msg);
    expect(() => parseServer({ ...msg, ts: 'soon' })).toThrow(ProtocolError);
  });

  it('flags event kinds it does not know instead of failing', () => {
    const msg = parseServer({
      type: 'event',
      turn: 't',
      kind: 'trial_profile',
      data: { iteration: 1, of: 3 }
    });
    expect(msg).toMatchObject({ kind: 'trial_profile', unknown: true });
  });

  it.each([
    [{ type: 'halo' }, 'unknown message type'],
    [
      { type: 'op', turn: 't', op: 'o', name: 'format_disk', args: {} },
      'unknown notebook operation'
    ],
    [
      {
        type: 'op',
        turn: 't',
        op: 'o',
        name: 'replace_source',
        args: { cell_id: 'a' }
      },
      "lacks 'source'"
    ],
    [
      {
        type: 'op',
        turn: 't',
        op: 'o',
        name: 'insert_cell',
        args: { index: 0.5, source: '', cell_type: 'code' }
      },
      'integer'
    ],
    [
      { type: 'event', turn: 't', kind: 'text', data: { text: 3 } },
      'malformed'
    ],
    [{ type: 'ready', version: 2 }, "lacks 'conversation'"],
    [
      {
        type: 'approval_request',
        turn: 't',
        request: 'r',
        ops: [{ op: 'o', name: 'format_disk', args: {} }],
        what: 'x',
        why: 'y'
      },
      'malformed op'
    ],
    [
      {
        type: 'approval_request',
        turn: 't',
        request: 'r',
        ops: [],
        what: 'x',
        why: 'y'
      },
      'ops must be a list'
    ],
    [{ type: 'error' }, "lacks 'message'"],
    ['nope', 'unknown message type']
  ])('rejects %j', (msg, why) => {
    expect(() => parseServer(msg)).toThrow(why as string);
  });

  it('gives run_cell and kernel_eval a default timeout', () => {
    const run = parseServer({
      type: 'op',
      turn: 't',
      op: 'o',
      name: 'run_cell',
      args: { cell_id: 'a' }
    });
    expect(run).toMatchObject({ args: { cell_id: 'a', timeout: 60 } });
    const evaluate = parseServer({
      type: 'op',
      turn: 't',
      op: 'o',
      name: 'kernel_eval',
      args: { code: '1' }
    });
    expect(evaluate).toMatchObject({ args: { timeout: 30 } });
  });
});

describe('builders', () => {
  it('keep op errors to one line', () => {
    expect(opFailed('o', 'Traceback\n  line 1\nNameError: x')).toEqual({
      type: 'op_result',
      op: 'o',
      ok: false,
      error: 'Traceback line 1 NameError: x'
    });
  });
});
