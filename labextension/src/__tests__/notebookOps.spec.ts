import { YCodeCell, YNotebook } from '@jupyter/ydoc';

import {
  NotebookOpError,
  deleteCell,
  errorFromOutputs,
  insertCell,
  listCells,
  replaceSource,
  restore,
  snapshot
} from '../notebookOps';

const RESULT = {
  output_type: 'execute_result',
  execution_count: 1,
  metadata: {},
  data: { 'text/plain': '1' }
};
const ERROR = {
  output_type: 'error',
  ename: 'NameError',
  evalue: "name 'y' is not defined",
  traceback: ["NameError: name 'y' is not defined"]
};

function notebook(): YNotebook {
  const nb = YNotebook.create();
  nb.insertCells(0, [
    {
      id: 'a1b2',
      cell_type: 'code',
      source: 'x = 1\nx',
      metadata: {},
      outputs: [RESULT],
      execution_count: 1
    },
    { id: 'c3d4', cell_type: 'markdown', source: '# Notes', metadata: {} },
    {
      id: 'e5f6',
      cell_type: 'code',
      source: 'y',
      metadata: {},
      outputs: [ERROR],
      execution_count: 2
    }
  ] as any);
  return nb;
}

// yjs warns when @jupyter/ydoc reads a cell's types before they join the document
const warn = console.warn;
beforeAll(() => {
  jest.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
    if (!String(args[0]).startsWith('Invalid access: Add Yjs type')) {
      warn(...args);
    }
  });
});

describe('notebook ops on a YNotebook', () => {
  let nb: YNotebook;
  beforeEach(() => {
    nb = notebook();
  });
  afterEach(() => nb.dispose());

  it('lists cells with ids, types, sources, outputs and counts', () => {
    expect(listCells(nb)).toEqual([
      {
        id: 'a1b2',
        cell_type: 'code',
        source: 'x = 1\nx',
        outputs: [RESULT],
        execution_count: 1
      },
      {
        id: 'c3d4',
        cell_type: 'markdown',
        source: '# Notes',
        outputs: [],
        execution_count: null
      },
      {
        id: 'e5f6',
        cell_type: 'code',
        source: 'y',
        outputs: [ERROR],
        execution_count: 2
      }
    ]);
  });

  it('replaces a source by id and returns the old one', () => {
    expect(replaceSource(nb, 'e5f6', 'y = 2\ny')).toBe('y');
    expect(nb.cells[2].getSource()).toBe('y = 2\ny');
    expect(() => replaceSource(nb, 'zz', '')).toThrow(
      new NotebookOpError("no cell with id 'zz'")
    );
  });

  it('inserts cells (index clamped) and returns their ids', () => {
    const id = insertCell(nb, 1, 'import pandas as pd', 'code');
    expect(nb.cells[1].getId()).toBe(id);
    expect(nb.cells[1].getSource()).toBe('import pandas as pd');
    const last = insertCell(nb, 99, '*end*', 'markdown');
    expect(nb.cells[nb.cells.length - 1].getId()).toBe(last);
    expect(nb.cells[nb.cells.length - 1].cell_type).toBe('markdown');
    const first = insertCell(nb, -3, 'raw', 'raw');
    expect(nb.cells[0].getId()).toBe(first);
    expect(new Set(nb.cells.map(c => c.getId())).size).toBe(6);
    expect(() => insertCell(nb, 0, '', 'python' as any)).toThrow(
      NotebookOpError
    );
  });

  it('deletes a cell by id', () => {
    expect(deleteCell(nb, 'c3d4').source).toBe('# Notes');
    expect(nb.cells.map(c => c.getId())).toEqual(['a1b2', 'e5f6']);
    expect(() => deleteCell(nb, 'c3d4')).toThrow("no cell with id 'c3d4'");
  });

  it('finds the error output', () => {
    expect(errorFromOutputs([RESULT as any, ERROR as any])).toEqual({
      ename: 'NameError',
      evalue: "name 'y' is not defined",
      traceback: ["NameError: name 'y' is not defined"]
    });
    expect(errorFromOutputs([RESULT as any])).toBeNull();
  });

  it('restores a snapshot after edits, inserts, deletes and runs, in one transaction', () => {
    const before = listCells(nb);
    const snap = snapshot(nb);
    replaceSource(nb, 'a1b2', 'x = 2');
    insertCell(nb, 0, 'new', 'code');
    deleteCell(nb, 'c3d4');
    const code = nb.cells.find(c => c.getId() === 'e5f6') as YCodeCell;
    code.setOutputs([]);
    code.execution_count = 7;
    nb.moveCell(2, 0);
    expect(listCells(nb)).not.toEqual(before);

    const kept = nb.cells.find(c => c.getId() === 'e5f6');
    let changes = 0;
    nb.changed.connect(() => changes++);
    restore(nb, snap);
    expect(changes).toBe(1);
    expect(listCells(nb)).toEqual(before);
    expect(nb.cells.some(c => c === kept)).toBe(true); // kept cells are updated in place
  });

  it('restore recreates a cell whose type changed', () => {
    const before = listCells(nb);
    const snap = snapshot(nb);
    deleteCell(nb, 'c3d4');
    nb.insertCell(1, {
      id: 'c3d4',
      cell_type: 'code',
      source: 'oops',
      metadata: {}
    } as any);
    restore(nb, snap);
    expect(listCells(nb)).toEqual(before);
  });

  it('restore of an untouched notebook changes nothing', () => {
    const snap = snapshot(nb);
    let changes = 0;
    nb.changed.connect(() => changes++);
    restore(nb, snap);
    expect(listCells(nb)).toEqual(
      snap.cells.map(({ metadata, attachments, ...c }) => c)
    );
    expect(changes).toBeLessThanOrEqual(1);
  });
});
