/**
 * Diffs for edit cards: a line diff (longest common subsequence) before → after, and the
 * rows a card shows: line numbers, the changed words of a changed line, and long unchanged
 * stretches folded so the change is what fits in a narrow sidebar.
 */

export interface IDiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

const LIMIT = 4_000_000; // n*m cells of the table; beyond it, show all-removed/all-added

function splitLines(text: string): string[] {
  return text === '' ? [] : text.split('\n');
}

/** The longest common subsequence table of a and b: lcs[i][j] for a[i:] and b[j:]. */
function lcsTable<T>(a: T[], b: T[]): Uint32Array[] {
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
  return lcs;
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
  const lcs = lcsTable(a, b);
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

/** A piece of a diff row; `changed` pieces are what an edit changed within the line. */
export interface IDiffSpan {
  text: string;
  changed: boolean;
}

export interface IDiffRow {
  op: ' ' | '-' | '+';
  /** line number before the edit (unchanged and removed lines) */
  oldNo?: number;
  /** line number after the edit (unchanged and added lines) */
  newNo?: number;
  spans: IDiffSpan[];
}

/** Unchanged lines left out between two shown stretches. */
export interface IDiffFold {
  folded: number;
}

export type DiffItem = IDiffRow | IDiffFold;

const WORD_LIMIT = 40_000; // token pairs; beyond it a changed line is changed as a whole

function tokens(line: string): string[] {
  return line.match(/\w+|\s+|[^\w\s]/g) ?? [];
}

function pushSpan(spans: IDiffSpan[], text: string, changed: boolean): void {
  const last = spans[spans.length - 1];
  if (last && last.changed === changed) {
    last.text += text;
  } else if (text) {
    spans.push({ text, changed });
  }
}

/** The words that differ between a removed line and the line that replaced it. */
export function wordDiff(
  before: string,
  after: string
): { before: IDiffSpan[]; after: IDiffSpan[] } {
  const a = tokens(before);
  const b = tokens(after);
  if (a.length * b.length > WORD_LIMIT) {
    return {
      before: [{ text: before, changed: true }],
      after: [{ text: after, changed: true }]
    };
  }
  const lcs = lcsTable(a, b);
  const left: IDiffSpan[] = [];
  const right: IDiffSpan[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      pushSpan(left, a[i++], false);
      pushSpan(right, b[j++], false);
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      pushSpan(left, a[i++], true);
    } else {
      pushSpan(right, b[j++], true);
    }
  }
  while (i < a.length) {
    pushSpan(left, a[i++], true);
  }
  while (j < b.length) {
    pushSpan(right, b[j++], true);
  }
  return { before: left, after: right };
}

/** Lines that share nothing but blanks and punctuation are not a reworded line. */
function related(spans: IDiffSpan[]): boolean {
  return spans.some(s => !s.changed && /\w/.test(s.text));
}

/**
 * The rows of a line diff: numbered, removed/added pairs with their changed words marked,
 * and runs of unchanged lines longer than `2 * context + 1` folded (keeping `context` lines
 * next to each change). A diff without changes shows whole.
 */
export function diffRows(lines: IDiffLine[], context = 2): DiffItem[] {
  const rows: IDiffRow[] = [];
  let oldNo = 0;
  let newNo = 0;
  for (let k = 0; k < lines.length;) {
    if (lines[k].op === ' ') {
      rows.push({
        op: ' ',
        oldNo: ++oldNo,
        newNo: ++newNo,
        spans: [{ text: lines[k].text, changed: false }]
      });
      k++;
      continue;
    }
    // a run of removed lines and the added lines right after it: pair them up
    const removed: string[] = [];
    const added: string[] = [];
    while (k < lines.length && lines[k].op === '-') {
      removed.push(lines[k++].text);
    }
    while (k < lines.length && lines[k].op === '+') {
      added.push(lines[k++].text);
    }
    const pairs = removed.map((text, n) =>
      n < added.length ? wordDiff(text, added[n]) : null
    );
    removed.forEach((text, n) => {
      const pair = pairs[n];
      const spans =
        pair && related(pair.before) ? pair.before : [{ text, changed: false }];
      rows.push({ op: '-', oldNo: ++oldNo, spans });
    });
    added.forEach((text, n) => {
      const pair = pairs[n];
      const spans =
        pair && related(pair.after) ? pair.after : [{ text, changed: false }];
      rows.push({ op: '+', newNo: ++newNo, spans });
    });
  }
  if (rows.every(row => row.op === ' ')) {
    return rows;
  }
  const keep = rows.map(() => false);
  rows.forEach((row, n) => {
    if (row.op !== ' ') {
      for (
        let m = Math.max(0, n - context);
        m <= Math.min(rows.length - 1, n + context);
        m++
      ) {
        keep[m] = true;
      }
    }
  });
  const items: DiffItem[] = [];
  let folded = 0;
  rows.forEach((row, n) => {
    if (keep[n]) {
      if (folded) {
        items.push({ folded });
        folded = 0;
      }
      items.push(row);
    } else {
      folded++;
    }
  });
  if (folded) {
    items.push({ folded });
  }
  // folding a single line saves nothing: show it
  return items.flatMap((item, n) =>
    'folded' in item && item.folded === 1 ? [foldedRow(rows, items, n)] : [item]
  );
}

/** The one unchanged row a fold of one line stands for. */
function foldedRow(rows: IDiffRow[], items: DiffItem[], at: number): IDiffRow {
  const before = items
    .slice(0, at)
    .reverse()
    .find((item): item is IDiffRow => !('folded' in item));
  const index = before ? rows.indexOf(before) + 1 : 0;
  return rows[index];
}
