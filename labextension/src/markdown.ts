/**
 * How a (possibly still streaming) reply is cut into blocks that render on their own.
 *
 * Fenced code blocks come out as code (they get Copy / Insert below / Replace cell); the
 * prose between them is cut at blank lines where CommonMark ends every open block, so a
 * finished block keeps its text while the reply streams on and only the growing tail is
 * rendered again. Nothing here produces HTML: the components render markdown blocks through
 * JupyterLab's rendermime (its sanitizer and markdown parser).
 */

export type Segment =
  | { kind: 'text'; text: string }
  | { kind: 'code'; lang: string; code: string; closed: boolean };

/** An opening fence: up to 3 spaces, 3+ backticks or tildes, an info string without backticks. */
const OPEN = /^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;

/** Split a (possibly still streaming) reply into prose and fenced code blocks. */
export function splitFences(text: string): Segment[] {
  const segments: Segment[] = [];
  const lines = text.split('\n');
  let prose: string[] = [];
  let i = 0;
  const flushProse = () => {
    const joined = prose.join('\n');
    if (joined.trim() !== '') {
      segments.push({ kind: 'text', text: joined.replace(/^\n+|\n+$/g, '') });
    }
    prose = [];
  };
  while (i < lines.length) {
    const open = OPEN.exec(lines[i]);
    if (!open) {
      prose.push(lines[i++]);
      continue;
    }
    flushProse();
    const indent = open[1].length;
    const fence = open[2];
    const close = new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`);
    const code: string[] = [];
    let closed = false;
    i++;
    while (i < lines.length) {
      if (close.test(lines[i])) {
        closed = true;
        i++;
        break;
      }
      // CommonMark: the fence's own indentation is removed from each content line
      code.push(lines[i++].replace(new RegExp(`^ {0,${indent}}`), ''));
    }
    segments.push({
      kind: 'code',
      lang: open[3] ?? '',
      code: code.join('\n'),
      closed
    });
  }
  flushProse();
  return segments;
}

/** A list item's first line (up to 3 spaces, a bullet or a number, then a space or the end). */
const LIST_ITEM = /^ {0,3}([-+*]|\d{1,9}[.)])(\s|$)/;

/**
 * Cut prose into blocks at blank lines where CommonMark closes every open block (paragraph,
 * list, quote, table), so each block renders the same alone as inside the whole: a blank
 * line followed by text, unless a list is open and the line goes on with it (an indented
 * continuation or the next item).
 */
export function splitBlocks(prose: string): string[] {
  const lines = prose.split('\n');
  const blocks: string[] = [];
  let current: string[] = [];
  let inList = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const afterBlank = i > 0 && lines[i - 1].trim() === '';
    const continues = inList && (/^\s/.test(line) || LIST_ITEM.test(line));
    if (
      afterBlank &&
      line.trim() !== '' &&
      !continues &&
      current.some(l => l.trim() !== '')
    ) {
      blocks.push(current.join('\n').trim());
      current = [];
      inList = false;
    }
    inList = inList || LIST_ITEM.test(line);
    current.push(line);
  }
  if (current.some(l => l.trim() !== '')) {
    blocks.push(current.join('\n').trim());
  }
  return blocks;
}

/** One block of a reply as the transcript renders it. */
export interface IRenderBlock {
  /** stable while the reply streams (its position and kind) */
  key: string;
  kind: 'markdown' | 'code';
  /** markdown source, or the code of a fenced block */
  text: string;
  /** a code block's language ('' when the fence names none) */
  lang: string;
  /**
   * The block will not change any more: a code block whose closing fence arrived, or any
   * block once the reply has ended. Code actions wait for it.
   */
  complete: boolean;
}

/**
 * The blocks of a reply. `ended`: no more text will come (the turn is over, or another part
 * follows this text), so a fence never closed is complete all the same.
 */
export function renderBlocks(text: string, ended: boolean): IRenderBlock[] {
  const blocks: IRenderBlock[] = [];
  for (const segment of splitFences(text)) {
    if (segment.kind === 'code') {
      blocks.push({
        key: `${blocks.length}-code`,
        kind: 'code',
        text: segment.code,
        lang: segment.lang,
        complete: segment.closed || ended
      });
    } else {
      for (const chunk of splitBlocks(segment.text)) {
        blocks.push({
          key: `${blocks.length}-markdown`,
          kind: 'markdown',
          text: chunk,
          lang: '',
          complete: true
        });
      }
    }
  }
  const last = blocks[blocks.length - 1];
  if (last && last.kind === 'markdown') {
    last.complete = ended;
  }
  return blocks;
}

/** Markdown that needs the LaTeX typesetter (`$…$`, `$$…$$`, `\(…\)`, `\[…\]`). */
export function hasMath(source: string): boolean {
  return /\$[^$\s][^$]*\$|\\\(|\\\[|\$\$/.test(source);
}
