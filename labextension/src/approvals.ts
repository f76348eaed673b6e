/**
 * Which notebook ops need the user's approval (the twin of the server's rule,
 * `jupyter_devstral/server/approvals.py`), and the browser's record of the approvals the
 * user gave. The server never sends such an op without an approval; this side refuses one
 * that arrives without a matching click all the same.
 */
import type { IPlannedOp, IPolicies, Op } from './protocol';

/** Why this op needs the user's approval (null: it does not). */
export function needsApproval(
  op: Pick<Op, 'name' | 'args' | 'helper'>,
  policies: IPolicies,
  fixCell?: string
): string | null {
  const args = op.args as Record<string, unknown>;
  const own = fixCell !== undefined && args.cell_id === fixCell;
  switch (op.name) {
    case 'list_cells':
      return null;
    case 'kernel_eval':
      return op.helper ? null : 'code the model wrote runs in your kernel';
    case 'delete_cell':
      return 'deletes always ask';
    case 'replace_source':
      if (own) {
        return null;
      }
      return policies.edit === 'ask' ? 'edits: ask' : null;
    case 'insert_cell':
      return policies.edit === 'ask' ? 'edits: ask' : null;
    case 'run_cell':
      if (own) {
        return null;
      }
      return policies.run === 'ask' ? 'runs: ask' : null;
  }
  return 'unknown operation';
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(sorted);
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value as object).sort()) {
      out[key] = sorted((value as Record<string, unknown>)[key]);
    }
    return out;
  }
  return value;
}

/** One string per (name, arguments): what "the same op" means. */
export function canonical(name: string, args: unknown): string {
  return JSON.stringify([name, sorted(args)]);
}

/** The ops the user approved and the server has not sent yet, by op id. */
export class ApprovalGate {
  private _approved = new Map<string, string>();

  /** The user approved these ops (an approval card's click). */
  approve(ops: IPlannedOp[]): void {
    for (const op of ops) {
      this._approved.set(op.op, canonical(op.name, op.args));
    }
  }

  /** Whether this op was approved exactly so (each approval lets one op through). */
  take(op: Pick<Op, 'op' | 'name' | 'args'>): boolean {
    const approved = this._approved.get(op.op);
    if (approved === undefined || approved !== canonical(op.name, op.args)) {
      return false;
    }
    this._approved.delete(op.op);
    return true;
  }

  /** A turn ended: what it did not use is void. */
  clear(): void {
    this._approved.clear();
  }
}
