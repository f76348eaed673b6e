/**
 * Notebook operations by cell id, as plain functions over the shared notebook model.
 *
 * No widget or DOM here: the same functions run in JupyterLab (on
 * `panel.content.model.sharedModel`) and in the unit tests (on a bare `YNotebook`).
 */
import type {
  ISharedCell,
  ISharedCodeCell,
  ISharedNotebook
} from '@jupyter/ydoc';
import type * as nbformat from '@jupyterlab/nbformat';
import type { PartialJSONObject } from '@lumino/coreutils';

import type { CellType, ICellInfo, IErrorInfo } from './protocol';

/** An operation that cannot be carried out; the message is one line for the model. */
export class NotebookOpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotebookOpError';
  }
}

const CELL_TYPES: readonly CellType[] = ['code', 'markdown', 'raw'];

function isCode(cell: ISharedCell): cell is ISharedCodeCell {
  return cell.cell_type === 'code';
}

function outputsOf(cell: ISharedCell): nbformat.IOutput[] {
  return isCode(cell) ? cell.getOutputs() : [];
}

/** Every cell, in order, as the `list_cells` op answers. */
export function listCells(nb: ISharedNotebook): ICellInfo[] {
  return nb.cells.map(cell => ({
    id: cell.getId(),
    cell_type: cell.cell_type as CellType,
    source: cell.getSource(),
    outputs: outputsOf(cell),
    execution_count: isCode(cell) ? (cell.execution_count ?? null) : null
  }));
}

/** The index of the cell with this id; throws {@link NotebookOpError} when there is none. */
export function indexOf(nb: ISharedNotebook, cellId: string): number {
  const index = nb.cells.findIndex(cell => cell.getId() === cellId);
  if (index < 0) {
    throw new NotebookOpError(`no cell with id '${cellId}'`);
  }
  return index;
}

export function getCell(nb: ISharedNotebook, cellId: string): ISharedCell {
  return nb.cells[indexOf(nb, cellId)];
}

/** Replace a cell's source; returns the source it had. */
export function replaceSource(
  nb: ISharedNotebook,
  cellId: string,
  source: string
): string {
  const cell = getCell(nb, cellId);
  const before = cell.getSource();
  if (before !== source) {
    cell.setSource(source);
  }
  return before;
}

/** Insert a cell at `index` (clamped to the notebook); returns the new cell's id. */
export function insertCell(
  nb: ISharedNotebook,
  index: number,
  source: string,
  cellType: CellType = 'code'
): string {
  if (!CELL_TYPES.includes(cellType)) {
    throw new NotebookOpError(`unknown cell type '${cellType}'`);
  }
  const at = Math.max(0, Math.min(Math.trunc(index), nb.cells.length));
  const cell = nb.insertCell(at, {
    cell_type: cellType,
    source,
    metadata: {}
  } as nbformat.ICell);
  return cell.getId();
}

/** Delete a cell; returns what it was. */
export function deleteCell(nb: ISharedNotebook, cellId: string): ICellInfo {
  const index = indexOf(nb, cellId);
  const info = listCells(nb)[index];
  nb.deleteCell(index);
  return info;
}

/** The first error output as `{ename, evalue, traceback}`, or null. */
export function errorFromOutputs(
  outputs: readonly nbformat.IOutput[]
): IErrorInfo | null {
  for (const output of outputs) {
    if (output.output_type === 'error') {
      return {
        ename: String(output.ename ?? ''),
        evalue: String(output.evalue ?? ''),
        traceback: Array.isArray(output.traceback)
          ? output.traceback.map(String)
          : []
      };
    }
  }
  return null;
}

// -- snapshot / restore ("Undo agent turn") -----------------------------------------------

export interface ICellSnapshot {
  id: string;
  cell_type: CellType;
  source: string;
  metadata: PartialJSONObject;
  outputs: nbformat.IOutput[];
  execution_count: number | null;
  attachments?: nbformat.IAttachments;
}

export interface INotebookSnapshot {
  cells: ICellSnapshot[];
  taken: number;
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value ?? null));
}

/** Ids, types, sources, outputs (and metadata) of every cell. */
export function snapshot(nb: ISharedNotebook): INotebookSnapshot {
  const cells = nb.cells.map(cell => {
    const json = cell.toJSON() as nbformat.IBaseCell;
    const snap: ICellSnapshot = {
      id: cell.getId(),
      cell_type: cell.cell_type as CellType,
      source: cell.getSource(),
      metadata: clone((json.metadata ?? {}) as PartialJSONObject),
      outputs: clone(outputsOf(cell)),
      execution_count: isCode(cell) ? (cell.execution_count ?? null) : null
    };
    if (json.attachments) {
      snap.attachments = clone(json.attachments as nbformat.IAttachments);
    }
    return snap;
  });
  return { cells, taken: Date.now() };
}

function asCellJSON(snap: ICellSnapshot): nbformat.ICell {
  const cell: Record<string, unknown> = {
    id: snap.id,
    cell_type: snap.cell_type,
    source: snap.source,
    metadata: clone(snap.metadata)
  };
  if (snap.cell_type === 'code') {
    cell.outputs = clone(snap.outputs);
    cell.execution_count = snap.execution_count;
  }
  if (snap.attachments) {
    cell.attachments = clone(snap.attachments);
  }
  return cell as unknown as nbformat.ICell;
}

function sync(cell: ISharedCell, snap: ICellSnapshot): void {
  if (cell.getSource() !== snap.source) {
    cell.setSource(snap.source);
  }
  if (isCode(cell)) {
    if (JSON.stringify(cell.getOutputs()) !== JSON.stringify(snap.outputs)) {
      cell.setOutputs(clone(snap.outputs));
    }
    if ((cell.execution_count ?? null) !== snap.execution_count) {
      cell.execution_count = snap.execution_count;
    }
  }
}

/**
 * Bring the notebook back to a snapshot in one transaction (one undo step).
 *
 * Cells that kept their id and type are updated in place (their widgets stay); cells the
 * turn inserted go; cells it deleted (or moved) come back from the snapshot with their id.
 * Inside a transaction `nb.cells` is not updated yet, so the structural steps work on
 * indexes, mirrored in `ids`.
 */
export function restore(nb: ISharedNotebook, snap: INotebookSnapshot): void {
  const targets = new Map(snap.cells.map(cell => [cell.id, cell]));
  nb.transact(() => {
    const cells = [...nb.cells];
    const ids = cells.map(cell => cell.getId());
    for (const cell of cells) {
      const target = targets.get(cell.getId());
      if (target && target.cell_type === cell.cell_type) {
        sync(cell, target);
      }
    }
    for (let k = cells.length - 1; k >= 0; k--) {
      const target = targets.get(ids[k]);
      if (!target || target.cell_type !== cells[k].cell_type) {
        nb.deleteCell(k);
        ids.splice(k, 1);
      }
    }
    snap.cells.forEach((target, i) => {
      if (ids[i] === target.id) {
        return;
      }
      const j = ids.indexOf(target.id, i + 1);
      if (j > i) {
        nb.deleteCell(j);
        ids.splice(j, 1);
      }
      nb.insertCell(i, asCellJSON(target));
      ids.splice(i, 0, target.id);
    });
    while (ids.length > snap.cells.length) {
      nb.deleteCell(ids.length - 1);
      ids.pop();
    }
  });
}
