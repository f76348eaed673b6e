/**
 * Kernel work for agent ops, always in the pinned notebook's own kernel:
 * `run_cell` (a real cell run, outputs in the notebook) and `kernel_eval` (helper code,
 * no cell touched).
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import { CodeCell } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import type { NotebookPanel } from '@jupyterlab/notebook';
import { KernelMessage } from '@jupyterlab/services';

import { NotebookOpError, errorFromOutputs } from './notebookOps';
import type { IOpValues } from './protocol';

const AFTER_INTERRUPT_MS = 10_000;

type Outcome<T> = { done: true; value: T } | { done: false };

function within<T>(promise: Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Outcome<T>>(resolve => {
    timer = setTimeout(() => resolve({ done: false }), ms);
  });
  return Promise.race([
    promise.then(value => ({ done: true as const, value })),
    timeout
  ]).finally(() => clearTimeout(timer));
}

async function kernelOf(sessionContext: ISessionContext) {
  await sessionContext.ready;
  const kernel = sessionContext.session?.kernel;
  if (!kernel) {
    throw new NotebookOpError('the notebook has no kernel');
  }
  return kernel;
}

/** The code cell widget with this id in the notebook. */
export function findCodeCell(panel: NotebookPanel, cellId: string): CodeCell {
  const cell = panel.content.widgets.find(
    w => w.model.sharedModel.getId() === cellId
  );
  if (!cell) {
    throw new NotebookOpError(`no cell with id '${cellId}'`);
  }
  if (!(cell instanceof CodeCell)) {
    throw new NotebookOpError(
      `cell '${cellId}' is a ${cell.model.type} cell, not a code cell`
    );
  }
  return cell;
}

/**
 * Run one cell as the user would (outputs land in the notebook) and wait for it.
 *
 * On timeout the kernel is interrupted, but only when this run had started: a run still
 * queued behind the user's own work leaves that work alone.
 */
export async function runCell(
  panel: NotebookPanel,
  cellId: string,
  timeoutS: number
): Promise<IOpValues['run_cell']> {
  const cell = findCodeCell(panel, cellId);
  const kernel = await kernelOf(panel.sessionContext);
  const previous = cell.outputArea.future;
  const run = CodeCell.execute(cell, panel.sessionContext, {
    deletedCells: panel.content.model?.deletedCells ?? [],
    recordTiming: false
  });
  let started = false;
  const future = cell.outputArea.future;
  if (future && future !== previous) {
    future.registerMessageHook(msg => {
      if (
        KernelMessage.isStatusMsg(msg) &&
        msg.content.execution_state === 'busy'
      ) {
        started = true;
      }
      return true;
    });
  }
  let outcome: Outcome<KernelMessage.IExecuteReplyMsg | void>;
  try {
    outcome = await within(run, timeoutS * 1000);
    if (!outcome.done && started) {
      await kernel.interrupt();
      await within(run, AFTER_INTERRUPT_MS);
    }
  } catch (error) {
    throw new NotebookOpError(`the cell did not run: ${error}`);
  }
  const outputs = cell.model.outputs.toJSON() as nbformat.IOutput[];
  let error = errorFromOutputs(outputs);
  if (!outcome.done) {
    error = {
      ename: 'TimeoutError',
      evalue: started
        ? `cell ran longer than ${timeoutS} s and was interrupted`
        : `cell did not start within ${timeoutS} s (the kernel is busy)`,
      traceback: []
    };
  } else if (!error && outcome.value?.content.status === 'aborted') {
    error = {
      ename: 'ExecutionAborted',
      evalue: 'the kernel aborted this run (an earlier queued cell failed)',
      traceback: []
    };
  }
  return {
    outputs,
    error,
    timed_out: !outcome.done,
    execution_count: cell.model.executionCount ?? null
  };
}

/**
 * Run helper code in the notebook's kernel without touching any cell; return what it
 * printed to stdout. A failure in the code (or a timeout) is an op failure.
 */
export async function kernelEval(
  sessionContext: ISessionContext,
  code: string,
  timeoutS: number
): Promise<IOpValues['kernel_eval']> {
  const kernel = await kernelOf(sessionContext);
  const future = kernel.requestExecute(
    { code, silent: false, store_history: false, allow_stdin: false },
    true
  );
  let stdout = '';
  let failure = '';
  let started = false;
  future.onIOPub = msg => {
    if (KernelMessage.isStreamMsg(msg) && msg.content.name === 'stdout') {
      stdout += msg.content.text;
    } else if (KernelMessage.isErrorMsg(msg)) {
      failure = `${msg.content.ename}: ${msg.content.evalue}`;
    } else if (
      KernelMessage.isStatusMsg(msg) &&
      msg.content.execution_state === 'busy'
    ) {
      started = true;
    }
  };
  const outcome = await within(future.done, timeoutS * 1000);
  if (!outcome.done) {
    if (started) {
      await kernel.interrupt();
    }
    future.dispose();
    throw new NotebookOpError(`kernel_eval timed out after ${timeoutS} s`);
  }
  if (outcome.value.content.status !== 'ok') {
    throw new NotebookOpError(
      `the code failed in the kernel: ${failure || outcome.value.content.status}`
    );
  }
  return { stdout };
}
