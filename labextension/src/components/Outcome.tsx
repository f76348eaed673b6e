/**
 * A fix's outcome: its honest label and reasons, and what waits for the user. "runs,
 * review": the edit offered with its diff and Apply (it sets the cell; the user runs it).
 * "needs approval": each proposal with its diff, what it would do and Run it (the click is
 * the approval: the cell gets that source and runs once). Its effects must not happen twice,
 * so once clicked a proposal's Run it is never enabled again, whatever the run's outcome
 * (a failed or interrupted run may have done part of them: the user checks the cell and
 * runs it themselves).
 */
import React from 'react';

import { parseUnified } from '../agentOps';
import type { IProposal, ITurn } from '../turns';
import { Diff } from './Diff';

const LABEL_TEXT: Record<string, string> = {
  fixed: 'Fixed',
  'runs, review': 'Runs: review it',
  'needs approval': 'Needs your approval',
  'not fixed': 'Not fixed'
};

/** Whether a proposal's Run it may be clicked: never once it was (any `state`). */
export function proposalRunnable(
  proposal: IProposal,
  canEdit: boolean
): boolean {
  return canEdit && proposal.state === undefined;
}

const RUN_LABEL: Record<string, string> = {
  running: 'Running…',
  ran: 'Ran',
  failed: 'Run failed',
  claimed: 'Run elsewhere'
};

const RUN_TITLE =
  'Put this source in the cell and run it once in your kernel: that click is your approval';
const RAN_TITLE =
  'Run once already: it never runs again from here. Check the cell, then run it yourself if you mean to';

export function Proposal(props: {
  proposal: IProposal;
  canRun: boolean;
  run(): void;
}): JSX.Element {
  const { proposal, canRun, run } = props;
  const state = proposal.state;
  return (
    <div className="jp-Devstral-proposal" data-state={state ?? 'open'}>
      <div className="jp-Devstral-proposalNote">{proposal.note}</div>
      {proposal.diff && <Diff lines={parseUnified(proposal.diff)} />}
      <div className="jp-Devstral-proposalActions">
        <button
          type="button"
          className="jp-Devstral-runIt jp-mod-warn"
          disabled={!proposalRunnable(proposal, canRun)}
          title={state === undefined ? RUN_TITLE : RAN_TITLE}
          onClick={() => {
            if (proposalRunnable(proposal, canRun)) {
              run(); // (a second click before the re-render finds it clicked)
            }
          }}
        >
          {state === undefined ? 'Run it' : (RUN_LABEL[state] ?? 'Ran')}
        </button>
        {proposal.result && (
          <span
            className="jp-Devstral-proposalResult"
            data-ok={state === 'ran'}
          >
            {proposal.result}
          </span>
        )}
      </div>
    </div>
  );
}

export function FixOutcome(props: {
  turn: ITurn;
  canEdit: boolean;
  apply(): void;
  runProposal(p: IProposal): void;
}): JSX.Element | null {
  const { turn, canEdit } = props;
  if (!turn.done || turn.mode !== 'fix' || !turn.label) {
    return null;
  }
  const proposals = turn.proposals ?? [];
  return (
    <div className="jp-Devstral-result" data-label={turn.label}>
      <div className="jp-Devstral-resultLabel">
        {LABEL_TEXT[turn.label] ?? turn.label}
      </div>
      {turn.stopMessage && (
        <div className="jp-Devstral-resultMessage">{turn.stopMessage}</div>
      )}
      {turn.reasons && turn.reasons.length > 0 && (
        <ul className="jp-Devstral-reasons">
          {turn.reasons.map((r, i) => (
            <li key={i}>{r}</li>
          ))}
        </ul>
      )}
      {turn.offer && (
        <div className="jp-Devstral-offer">
          <div className="jp-Devstral-offerNote">
            This edit runs in a trial, but it needs your review: it is not in
            the cell yet.
          </div>
          {turn.offer.diff && <Diff lines={parseUnified(turn.offer.diff)} />}
          <button
            type="button"
            className="jp-Devstral-apply jp-mod-accept"
            disabled={!canEdit || turn.offer.applied}
            title="Set the cell's source to this edit (then run the cell yourself)"
            onClick={props.apply}
          >
            {turn.offer.applied ? 'Applied: run the cell to check it' : 'Apply'}
          </button>
        </div>
      )}
      {proposals.length > 0 && (
        <div className="jp-Devstral-proposals">
          <div className="jp-Devstral-offerNote">
            Not tried:{' '}
            {proposals.length === 1
              ? 'this candidate does'
              : 'these candidates do'}{' '}
            what the cell does not. Read it before you run it.
          </div>
          {proposals.map((p, i) => (
            <Proposal
              key={i}
              proposal={p}
              canRun={canEdit}
              run={() => props.runProposal(p)}
            />
          ))}
        </div>
      )}
    </div>
  );
}
