import { lineDiff } from '../diff';
import { splitFences, splitInline } from '../markdown';

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

  it('treats HTML as text', () => {
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
});

describe('splitInline', () => {
  it('finds code and bold spans', () => {
    expect(splitInline('use `df.head()` **now**!')).toEqual([
      { kind: 'text', text: 'use ' },
      { kind: 'code', text: 'df.head()' },
      { kind: 'text', text: ' ' },
      { kind: 'bold', text: 'now' },
      { kind: 'text', text: '!' }
    ]);
  });
});

describe('lineDiff', () => {
  it('marks removed and added lines', () => {
    expect(lineDiff('a\nb\nc', 'a\nB\nc\nd')).toEqual([
      { op: ' ', text: 'a' },
      { op: '-', text: 'b' },
      { op: '+', text: 'B' },
      { op: ' ', text: 'c' },
      { op: '+', text: 'd' }
    ]);
  });

  it('handles empty sides', () => {
    expect(lineDiff('', 'x')).toEqual([{ op: '+', text: 'x' }]);
    expect(lineDiff('x', '')).toEqual([{ op: '-', text: 'x' }]);
  });
});
