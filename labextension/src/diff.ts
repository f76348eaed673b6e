/** A line diff (longest common subsequence) for edit cards: before → after. */

export interface IDiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

const LIMIT = 4_000_000; // n*m cells of the table; beyond it, show all-removed/all-added

function splitLines(text: string): string[] {
  return text === '' ? [] : text.split('\n');
}

export function lineDiff(before: string, after: string): IDiffLine[] {
  const a = splitLines(before);
  const b = splitLines(after);
  if (a.length * b.length > LIMIT) {
    return [
      ...a.map(text => ({ op: '-' as const, text })),
      ...b.map(text => ({ op: '+' as const, text }))
    ];
  }
  // lcs[i][j]: length of the LCS of a[i:] and b[j:]
  const lcs: Uint32Array[] = [];
  for (let i = 0; i <= a.length; i++) {
    lcs.push(new Uint32Array(b.length + 1));
  }
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] =
        a[i] === b[j]
          ? lcs[i + 1][j + 1] + 1
          : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: IDiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i] });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      out.push({ op: '-', text: a[i++] });
    } else {
      out.push({ op: '+', text: b[j++] });
    }
  }
  while (i < a.length) {
    out.push({ op: '-', text: a[i++] });
  }
  while (j < b.length) {
    out.push({ op: '+', text: b[j++] });
  }
  return out;
}
