import { hasMath, renderBlocks, splitBlocks, splitFences } from '../markdown';

describe('splitFences', () => {
  it('splits prose and closed fences', () => {
    expect(
      splitFences('Try this:\n```python\nx = 2\nx\n```\nThen run it.')
    ).toEqual([
      { kind: 'text', text: 'Try this:' },
      { kind: 'code', lang: 'python', code: 'x = 2\nx', closed: true },
      { kind: 'text', text: 'Then run it.' }
    ]);
  });

  it('keeps a fence still streaming open', () => {
    expect(splitFences('```py\nimport os\npri')).toEqual([
      { kind: 'code', lang: 'py', code: 'import os\npri', closed: false }
    ]);
  });

  it('treats HTML as text (the renderer sanitizes it)', () => {
    expect(splitFences('<img src=x onerror=alert(1)>')).toEqual([
      { kind: 'text', text: '<img src=x onerror=alert(1)>' }
    ]);
  });

  it('needs a closing fence as long as the opening one', () => {
    const [block] = splitFences('````\n```\ninner\n```\n````');
    expect(block).toEqual({
      kind: 'code',
      lang: '',
      code: '```\ninner\n```',
      closed: true
    });
  });

  it('removes the indentation of an indented fence from its lines', () => {
    const [, block] = splitFences(
      '1. Run:\n   ```python\n   x = 1\n     y\n   ```'
    );
    expect(block).toEqual({
      kind: 'code',
      lang: 'python',
      code: 'x = 1\n  y',
      closed: true
    });
  });

  it('does not take inline triple backticks for a fence', () => {
    expect(splitFences('```x``` is inline')).toEqual([
      { kind: 'text', text: '```x``` is inline' }
    ]);
  });
});

describe('splitBlocks', () => {
  it('cuts at blank lines that close every block', () => {
    expect(
      splitBlocks(
        '## Findings\n\nThe sum fails.\n\n| a | b |\n|---|---|\n| 1 | 2 |'
      )
    ).toEqual([
      '## Findings',
      'The sum fails.',
      '| a | b |\n|---|---|\n| 1 | 2 |'
    ]);
  });

  it('keeps loose lists and their continuations together', () => {
    const list = '- one\n\n- two\n\n  more about two\n\n1. first\n\n2. second';
    expect(splitBlocks(list)).toEqual([list]);
  });

  it('keeps a paragraph with single line breaks whole', () => {
    expect(splitBlocks('a\nb\nc')).toEqual(['a\nb\nc']);
  });
});

describe('renderBlocks', () => {
  const answer =
    '## Findings\n\n- `prics` is a typo\n- see [docs](https://docs.python.org)\n\n' +
    'Fix:\n```python\ntotal = sum(prices)\n```';

  it('gives markdown blocks and a complete code block', () => {
    const blocks = renderBlocks(answer, false);
    expect(blocks.map(b => [b.kind, b.complete])).toEqual([
      ['markdown', true],
      ['markdown', true],
      ['markdown', true],
      ['code', true]
    ]);
    expect(blocks[3]).toMatchObject({
      kind: 'code',
      lang: 'python',
      text: 'total = sum(prices)'
    });
  });

  it('a fence still open is complete only once the reply ended', () => {
    const open = answer.slice(0, -4); // the closing fence has not arrived
    expect(renderBlocks(open, false).pop()).toMatchObject({
      kind: 'code',
      complete: false
    });
    expect(renderBlocks(open, true).pop()).toMatchObject({
      kind: 'code',
      complete: true
    });
  });

  it('the growing tail is the only block that changes while streaming', () => {
    const seen = new Map<string, string[]>();
    for (let n = 1; n <= answer.length; n++) {
      for (const block of renderBlocks(answer.slice(0, n), false)) {
        const texts = seen.get(block.key) ?? [];
        if (texts[texts.length - 1] !== block.text) {
          texts.push(block.text);
        }
        seen.set(block.key, texts);
      }
    }
    const final = renderBlocks(answer, true);
    // each block's text only ever grew to its final text (keys are stable)
    for (const block of final) {
      const texts = seen.get(block.key)!;
      expect(texts[texts.length - 1]).toBe(block.text);
    }
    // the heading block stopped changing once the list began
    expect(seen.get('0-markdown')!.slice(-1)).toEqual(['## Findings']);
  });

  it('the last prose block is complete only when the reply ended', () => {
    expect(renderBlocks('Hello', false)[0].complete).toBe(false);
    expect(renderBlocks('Hello', true)[0].complete).toBe(true);
  });
});

describe('hasMath', () => {
  it('finds TeX delimiters, not prices', () => {
    expect(hasMath('the mean $\\mu$ of x')).toBe(true);
    expect(hasMath('$$x^2$$')).toBe(true);
    expect(hasMath('costs $ 5 and $ 6')).toBe(false);
  });
});
