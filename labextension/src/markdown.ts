/**
 * A tiny, safe splitter for the model's markdown-ish replies: prose and fenced code blocks.
 *
 * Nothing here produces HTML; the components render the pieces as React text nodes.
 */

export type Segment =
  | { kind: 'text'; text: string }
  | { kind: 'code'; lang: string; code: string; closed: boolean };

const OPEN = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;

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
    const fence = open[1];
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
      code.push(lines[i++]);
    }
    segments.push({
      kind: 'code',
      lang: open[2] ?? '',
      code: code.join('\n'),
      closed
    });
  }
  flushProse();
  return segments;
}

export type Inline = { kind: 'text' | 'code' | 'bold'; text: string };

/** `code` and **bold** spans in one prose segment; everything else stays text. */
export function splitInline(text: string): Inline[] {
  const out: Inline[] = [];
  const pattern = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)/g;
  let last = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    if (m.index > last) {
      out.push({ kind: 'text', text: text.slice(last, m.index) });
    }
    out.push(
      m[1]
        ? { kind: 'code', text: m[1].slice(1, -1) }
        : { kind: 'bold', text: m[0].slice(2, -2) }
    );
    last = m.index + m[0].length;
  }
  if (last < text.length) {
    out.push({ kind: 'text', text: text.slice(last) });
  }
  return out;
}
