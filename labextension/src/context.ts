/**
 * What the context chips would send now, read from the pinned notebook: the notebook (its
 * cell count), the active cell, the selected text, the errors. A chip whose source is empty
 * (nothing selected, no error) is shown unavailable and sends nothing.
 */
import type { ICodeCellModel } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';

import type { Chip, IChatContext } from './protocol';

export interface ChipState {
  available: boolean;
  /** the chip's label with what it holds: "cell 3", "selection · 2 lines" */
  label: string;
  /** why it is unavailable, for its tooltip */
  why?: string;
}

function selectionOf(panel: NotebookPanel | null): string {
  const editor = panel?.content.activeCell?.editor;
  if (!editor) {
    return '';
  }
  const range = editor.getSelection();
  const a = editor.getOffsetAt(range.start);
  const b = editor.getOffsetAt(range.end);
  return editor.model.sharedModel
    .getSource()
    .slice(Math.min(a, b), Math.max(a, b));
}

function errorCount(panel: NotebookPanel): number {
  const cells = panel.content.model?.cells;
  let count = 0;
  for (let i = 0; cells && i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') {
      continue;
    }
    const outputs = (cell as ICodeCellModel).outputs;
    for (let k = 0; k < outputs.length; k++) {
      if (outputs.get(k).type === 'error') {
        count++;
        break;
      }
    }
  }
  return count;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Each chip's state for the pinned notebook (all unavailable when it is closed). */
export function chipState(
  panel: NotebookPanel | null
): Record<Chip, ChipState> {
  const open = !!panel && !panel.isDisposed && !!panel.content.model;
  if (!open) {
    const off = (label: string) => ({
      available: false,
      label,
      why: 'the notebook is closed'
    });
    return {
      notebook: off('notebook'),
      active_cell: off('active cell'),
      selection: off('selection'),
      errors: off('errors')
    };
  }
  const notebook = panel!.content;
  const cells = notebook.model!.cells.length;
  const active = notebook.activeCell;
  const selected = selectionOf(panel);
  const lines = selected ? selected.split('\n').length : 0;
  const errors = errorCount(panel!);
  return {
    notebook: {
      available: cells > 0,
      label: `notebook · ${plural(cells, 'cell')}`
    },
    active_cell: active
      ? { available: true, label: `cell ${notebook.activeCellIndex + 1}` }
      : { available: false, label: 'active cell', why: 'no cell is active' },
    selection: selected.trim()
      ? {
          available: true,
          label:
            lines > 1
              ? `selection · ${lines} lines`
              : `selection · ${plural(selected.length, 'char')}`
        }
      : {
          available: false,
          label: 'selection',
          why: 'nothing is selected in the active cell'
        },
    errors: errors
      ? { available: true, label: plural(errors, 'error') }
      : { available: false, label: 'errors', why: 'no cell shows an error' }
  };
}

/** The `context` of a chat message: the chips that are on and have something to send. */
export function contextOf(
  panel: NotebookPanel | null,
  chips: Record<Chip, boolean>
): IChatContext {
  const state = chipState(panel);
  const on = (chip: Chip) => chips[chip] && state[chip].available;
  const active = panel?.content.activeCell ?? null;
  return {
    active_cell_id: active ? active.model.sharedModel.getId() : null,
    selection: on('selection') ? selectionOf(panel) : '',
    chips: {
      notebook: on('notebook'),
      active_cell: on('active_cell'),
      selection: on('selection'),
      errors: on('errors')
    }
  };
}
