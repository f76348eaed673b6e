// Jest runs in Node, without a DOM: the renderer widget is not built here, only the choices
jest.mock('@lumino/widgets', () => ({ Widget: class {} }));

import {
  ICellLike,
  RESTORE_MIME,
  RESTORE_RANK,
  chooseCell,
  parseRestore,
  restoreRendererFactory
} from '../restoreRenderer';

const cell = (node: string, id: string): ICellLike => ({ node, model: { id } });

describe('chooseCell', () => {
  const a1 = cell('node-a1', 'id-1');
  const a2 = cell('node-a2', 'id-2');
  const b1 = cell('node-b1', 'id-1'); // a copy of the notebook: the same cell ids
  const b3 = cell('node-b3', 'id-3');
  const notebooks = [
    [a1, a2],
    [b1, b3]
  ];

  it('takes the cell the output is in, in any notebook', () => {
    expect(chooseCell(notebooks, 'node-b1', 'id-1')).toBe(b1);
    expect(chooseCell(notebooks, 'node-a2', null)).toBe(a2);
  });

  it('trusts the node over the id', () => {
    expect(chooseCell(notebooks, 'node-a2', 'id-3')).toBe(a2);
  });

  it('falls back to a unique cell id outside a cell', () => {
    expect(chooseCell(notebooks, null, 'id-3')).toBe(b3);
    expect(chooseCell(notebooks, 'not-a-cell', 'id-2')).toBe(a2);
  });

  it('gives up on an ambiguous or unknown id', () => {
    expect(chooseCell(notebooks, null, 'id-1')).toBeNull();
    expect(chooseCell(notebooks, null, 'id-9')).toBeNull();
    expect(chooseCell(notebooks, null, null)).toBeNull();
    expect(chooseCell([], 'node-a1', 'id-1')).toBeNull();
  });
});

describe('parseRestore', () => {
  it('reads the kernel data', () => {
    expect(parseRestore({ cell_id: 'c1', original: 'x = 1' })).toEqual({
      cellId: 'c1',
      original: 'x = 1'
    });
    expect(parseRestore({ cell_id: null, original: '' })).toEqual({
      cellId: null,
      original: ''
    });
  });

  it('rejects what is not ours', () => {
    expect(parseRestore(null)).toBeNull();
    expect(parseRestore('x = 1')).toBeNull();
    expect(parseRestore({ cell_id: 'c1' })).toBeNull();
    expect(parseRestore({ original: 42 })).toBeNull();
  });
});

describe('restoreRendererFactory', () => {
  it('is a safe renderer of our MIME type, ranked above the widget view', () => {
    const factory = restoreRendererFactory(() => []);
    expect(factory.mimeTypes).toEqual([RESTORE_MIME]);
    expect(factory.safe).toBe(true);
    expect(RESTORE_RANK).toBeLessThan(-10); // @jupyter-widgets: rank -10
  });
});
