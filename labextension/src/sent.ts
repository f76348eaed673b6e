/**
 * "What was sent": a request to the model as plain text, exactly as the backend recorded it
 * (after secret redaction: secrets show as `<secret:NAME>`). Shown in a <pre>, never
 * rendered as markdown or HTML.
 */
import type { ISentRecord } from './protocol';

function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

/** One line of options: `temperature=0.2 max_tokens=800 tool_choice=auto`. */
function options(record: ISentRecord): string {
  return Object.entries(record.options ?? {})
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** The heading of a request: where it went, which model, when. */
export function sentHeading(record: ISentRecord, index: number): string {
  const n = (record.messages ?? []).length;
  return (
    `request ${index + 1}: ${record.host ?? '?'} · ${record.model || record.backend || '?'}` +
    ` · ${n} message${n === 1 ? '' : 's'}`
  );
}

/** The whole request as text. */
export function sentText(record: ISentRecord): string {
  const lines = [
    `to: ${record.host ?? '?'}`,
    `backend: ${record.backend ?? '?'}    model: ${record.model ?? '?'}`,
    `time: ${record.time ?? '?'}`,
    `options: ${options(record)}`
  ];
  const tools = (record.tools ?? [])
    .map(t => (t as { function?: { name?: string } }).function?.name)
    .filter(Boolean);
  if (tools.length) {
    lines.push(`tools: ${tools.join(', ')}`);
  }
  const redacted = Object.entries(record.redacted ?? {});
  if (redacted.length) {
    lines.push(
      'secrets replaced: ' +
        redacted.map(([p, kind]) => `${p} (${kind})`).join(', ')
    );
  }
  for (const message of record.messages ?? []) {
    const m = message as Record<string, unknown>;
    const role = String(m.role ?? '?') + (m.name ? ` (${String(m.name)})` : '');
    lines.push('', `--- ${role} ---`);
    if (m.content !== undefined && m.content !== null && m.content !== '') {
      lines.push(text(m.content));
    }
    if (Array.isArray(m.tool_calls) && m.tool_calls.length) {
      lines.push('tool calls: ' + text(m.tool_calls));
    }
  }
  return lines.join('\n');
}
