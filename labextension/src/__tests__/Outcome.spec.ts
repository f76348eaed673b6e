/**
 * A proposal's "Run it" (effects that must not happen twice, run once after the user's
 * click): enabled only before its first click, never again, whatever the run's outcome.
 * The component is called as a function and its element tree read: no DOM needed.
 */
// (Outcome imports agentOps, which imports the kernel runner: not needed here)
jest.mock('../runner', () => ({ kernelEval: jest.fn(), runCell: jest.fn() }));

import type { ReactElement } from 'react';

import { Proposal, proposalRunnable } from '../components/Outcome';
import { INTERRUPTED_RUN, turnFromRecord, turnRecord } from '../records';
import { IProposal, newTurn } from '../turns';

function proposal(state?: IProposal['state']): IProposal {
  return {
    source: "os.remove('raw.csv')",
    action: 'propose',
    note: 'it deletes raw.csv',
    effects: ['deletes raw.csv'],
    diff: '',
    state
  };
}

/** The Run it button of a proposal as rendered: (disabled, label, its click). */
function runButton(
  p: IProposal,
  run: () => void,
  canRun = true
): { disabled: boolean; label: string; click(): void } {
  const find = (node: unknown): ReactElement | null => {
    if (!node || typeof node !== 'object') {
      return null;
    }
    if (Array.isArray(node)) {
      return node.map(find).find(Boolean) ?? null;
    }
    const el = node as ReactElement<Record<string, unknown>>;
    if (String(el.props?.className ?? '').includes('jp-Devstral-runIt')) {
      return el;
    }
    return find(el.props?.children);
  };
  const button = find(Proposal({ proposal: p, canRun, run }));
  expect(button).not.toBeNull();
  const props = button!.props as Record<string, unknown>;
  return {
    disabled: props.disabled as boolean,
    label: String(props.children),
    click: props.onClick as () => void
  };
}

describe("a proposal's Run it", () => {
  it('is enabled before its first click only', () => {
    const run = jest.fn();
    const p = proposal();
    expect(runButton(p, run)).toMatchObject({
      disabled: false,
      label: 'Run it'
    });
    expect(runButton(p, run, false).disabled).toBe(true); // no notebook to edit
    for (const [state, label] of [
      ['running', 'Running…'],
      ['ran', 'Ran'],
      ['failed', 'Run failed']
    ] as const) {
      p.state = state;
      expect(runButton(p, run)).toMatchObject({ disabled: true, label });
      expect(proposalRunnable(p, true)).toBe(false);
    }
  });

  it('never runs a failed proposal again, even when clicked', () => {
    const run = jest.fn();
    const p = proposal('failed');
    p.result = "NameError: name 'prics' is not defined";
    const button = runButton(p, run);
    expect(button.disabled).toBe(true);
    button.click(); // a stale click (no re-render yet) finds it already clicked
    expect(run).not.toHaveBeenCalled();
    const fresh = runButton(proposal(), run);
    fresh.click();
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('stays disabled after a restore that cut a run off', () => {
    const turn = newTurn('fix', 'fix');
    turn.done = true;
    turn.proposals = [proposal('running'), proposal()];
    const back = turnFromRecord(JSON.parse(JSON.stringify(turnRecord(turn))))!;
    const run = jest.fn();
    const [cut, open] = back.proposals!.map(p => runButton(p, run));
    expect(cut).toMatchObject({ disabled: true, label: 'Run failed' });
    expect(back.proposals![0].result).toBe(INTERRUPTED_RUN);
    expect(open).toMatchObject({ disabled: false, label: 'Run it' });
    cut.click();
    expect(run).not.toHaveBeenCalled();
  });
});
