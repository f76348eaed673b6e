import { IDiffRow, diffRows, lineDiff, wordDiff } from '../diff';

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

describe('wordDiff', () => {
  it('marks only the changed word of a line', () => {
    const { before, after } = wordDiff(
      'total = sum(prics)',
      'total = sum(prices)'
    );
    expect(before).toEqual([
      { text: 'total = sum(', changed: false },
      { text: 'prics', changed: true },
      { text: ')', changed: false }
    ]);
    expect(after.filter(s => s.changed)).toEqual([
      { text: 'prices', changed: true }
    ]);
  });
});

describe('diffRows', () => {
  it('numbers lines and marks words in a replaced line', () => {
    const rows = diffRows(
      lineDiff('x = 1\ntotal = sum(prics)', 'x = 1\ntotal = sum(prices)')
    ) as IDiffRow[];
    expect(rows.map(r => [r.op, r.oldNo, r.newNo])).toEqual([
      [' ', 1, 1],
      ['-', 2, undefined],
      ['+', undefined, 2]
    ]);
    expect(rows[2].spans.some(s => s.changed && s.text === 'prices')).toBe(
      true
    );
  });

  it('folds long unchanged stretches around the change', () => {
    const before = Array.from({ length: 20 }, (_, i) => `line ${i}`);
    const after = [...before];
    after[10] = 'line ten';
    const items = diffRows(lineDiff(before.join('\n'), after.join('\n')));
    expect(items[0]).toEqual({ folded: 8 });
    expect(items[items.length - 1]).toEqual({ folded: 7 });
    const shown = items.filter((i): i is IDiffRow => !('folded' in i));
    expect(shown.map(r => r.op).join('')).toBe('  -+  ');
    expect(shown[2].oldNo).toBe(11);
  });

  it('does not mark words of unrelated lines', () => {
    const rows = diffRows(lineDiff('import os', 'print(42)')) as IDiffRow[];
    expect(rows.every(r => r.spans.every(s => !s.changed))).toBe(true);
  });

  it('shows a one-line fold as its line', () => {
    const items = diffRows(lineDiff('a\nb\nc\nd', 'a\nb\nc\nD'));
    expect(items.every(i => !('folded' in i))).toBe(true);
    expect(items).toHaveLength(5);
  });
});
