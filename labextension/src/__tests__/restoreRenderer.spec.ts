// Jest runs in Node, without a DOM: the renderer widget is not built here, only the choices
// and what a click does
jest.mock('@lumino/widgets', () => ({ Widget: class {} }));
jest.mock('@jupyterlab/notebook', () => ({
  Notebook: class {},
  NotebookPanel: class {},
  NotebookActions: { runCells: jest.fn(async () => true) }
}));

import { Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

import {
  ICellLike,
  IRestorableCell,
  OFFER_LABELS,
  OFFER_MIME,
  RESTORE_MIME,
  RESTORE_RANK,
  TAKEN_NOTE,
  UNTRUSTED_NOTE,
  chooseCell,
  offerHash,
  offerView,
  parseOffer,
  parseRestore,
  restoreRendererFactory,
  runInItsNotebook,
  takeOffer,
  takenOffers
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
  it('is a safe renderer of both our MIME types, ranked above the widget view', () => {
    const factory = restoreRendererFactory(() => []);
    expect(factory.mimeTypes).toEqual([RESTORE_MIME, OFFER_MIME]);
    expect(factory.safe).toBe(true);
    expect(RESTORE_RANK).toBeLessThan(-10); // @jupyter-widgets: rank -10
  });
});

describe('parseOffer', () => {
  it('reads the kernel data', () => {
    expect(
      parseOffer({ cell_id: 'c1', action: 'apply', source: 'x = 1' })
    ).toEqual({
      id: offerHash('c1', 'apply', 'x = 1'),
      cellId: 'c1',
      action: 'apply',
      source: 'x = 1'
    });
    expect(parseOffer({ cell_id: null, action: 'run', source: '' })).toEqual({
      id: offerHash(null, 'run', ''),
      cellId: null,
      action: 'run',
      source: ''
    });
    expect(
      parseOffer({ id: 'k-7', cell_id: 'c1', action: 'run', source: 'x' })?.id
    ).toBe('k-7');
  });

  it('gives each offer a stable id of its content', () => {
    const id = offerHash('c1', 'run', 'rm()');
    expect(id).toBe(offerHash('c1', 'run', 'rm()'));
    expect(id).not.toBe(offerHash('c1', 'run', 'rm() '));
    expect(id).not.toBe(offerHash('c2', 'run', 'rm()'));
    expect(id).not.toBe(offerHash('c1', 'apply', 'rm()'));
  });

  it('rejects what is not ours, and actions it does not know', () => {
    expect(parseOffer(null)).toBeNull();
    expect(parseOffer({ cell_id: 'c1', source: 'x' })).toBeNull();
    expect(parseOffer({ action: 'delete', source: 'x' })).toBeNull();
    expect(parseOffer({ action: 'run', source: 7 })).toBeNull();
  });
});

/** A cell whose source is recorded, in the node/id world of chooseCell. */
function editable(node: string, id: string, source = '') {
  const cell = {
    node,
    source,
    metadata: {} as Record<string, any>,
    model: {
      id,
      sharedModel: {
        setSource: (text: string) => {
          cell.source = text;
        },
        getMetadata: (key: string) => cell.metadata[key],
        setMetadata: (key: string, value: any) => {
          cell.metadata[key] = JSON.parse(JSON.stringify(value));
        }
      }
    }
  };
  return cell;
}

describe('takeOffer', () => {
  const CANDIDATE = "total = sum(items)\nos.remove('raw.csv')";

  it('Apply fix sets the source of the cell and never runs it', async () => {
    const cell = editable('node-1', 'id-1', '%%devstral fix\nbroken');
    const runner = jest.fn(async () => true);
    const outcome = await takeOffer(
      [[cell]],
      'node-1',
      { id: 'o1', cellId: 'id-1', action: 'apply', source: CANDIDATE },
      runner
    );
    expect(outcome).toBe('applied');
    expect(cell.source).toBe(CANDIDATE);
    expect(runner).not.toHaveBeenCalled();
  });

  it('Run it sets the source, then runs that cell once', async () => {
    const other = editable('node-0', 'id-0', 'x = 1');
    const cell = editable('node-1', 'id-1', '%%devstral fix\nbroken');
    const order: string[] = [];
    const runner = jest.fn(async (c: IRestorableCell) => {
      order.push(`run ${c.model.id} with ${(c as typeof cell).source}`);
    });
    const outcome = await takeOffer(
      [[other, cell]],
      'node-1',
      { id: 'o2', cellId: 'id-1', action: 'run', source: CANDIDATE },
      runner
    );
    expect(outcome).toBe('ran');
    expect(runner).toHaveBeenCalledTimes(1);
    expect(order).toEqual([`run id-1 with ${CANDIDATE}`]);
    expect(other.source).toBe('x = 1');
  });

  it('Run it records the offer in the cell first, and never runs it twice', async () => {
    const cell = editable('node-1', 'id-1', '%%devstral fix\nbroken');
    cell.metadata.devstral = { keep: 1 };
    const offer = parseOffer({
      cell_id: 'id-1',
      action: 'run',
      source: CANDIDATE
    })!;
    const recorded: string[][] = [];
    const runner = jest.fn(async (c: IRestorableCell) => {
      recorded.push(takenOffers(c)); // already there when the cell runs
    });
    expect(await takeOffer([[cell]], 'node-1', offer, runner)).toBe('ran');
    expect(recorded).toEqual([[offer.id]]);
    expect(cell.metadata.devstral).toEqual({
      keep: 1,
      taken_offers: [offer.id]
    });
    // the notebook reopened (the metadata is in the .ipynb), or a second click
    cell.source = 'edited by the user';
    expect(await takeOffer([[cell]], 'node-1', offer, runner)).toBe('taken');
    expect(runner).toHaveBeenCalledTimes(1);
    expect(cell.source).toBe('edited by the user');
  });

  it('a cell it cannot find changes nothing and runs nothing', async () => {
    const a = editable('node-a', 'same', 'a');
    const b = editable('node-b', 'same', 'b');
    const runner = jest.fn(async () => true);
    const outcome = await takeOffer(
      [[a], [b]],
      null,
      { id: 'o3', cellId: 'same', action: 'run', source: CANDIDATE },
      runner
    );
    expect(outcome).toBe('not found');
    expect([a.source, b.source]).toEqual(['a', 'b']);
    expect(runner).not.toHaveBeenCalled();
  });

  it('labels say what the click does', () => {
    expect(OFFER_LABELS.apply.label).toBe('Apply fix');
    expect(OFFER_LABELS.run.label).toBe('Run it');
    expect(OFFER_LABELS.apply.title).toMatch(/does not run/);
    expect(OFFER_LABELS.run.title).toMatch(/once, for real/);
  });
});

describe('offerView', () => {
  const run = parseOffer({ cell_id: 'c1', action: 'run', source: 'rm()' })!;
  const apply = parseOffer({ cell_id: 'c1', action: 'apply', source: 'x' })!;

  it('shows no Run it in an untrusted notebook, only a line to trust it', () => {
    const view = offerView(run, false, false);
    expect(view.button).toBe(false);
    expect(view.note).toBe(UNTRUSTED_NOTE);
    expect(view.note).toMatch(/trust/i);
    expect(offerView(apply, false, false).button).toBe(true); // it runs nothing
  });

  it('shows a taken offer disabled, as Ran', () => {
    expect(offerView(run, true, true)).toEqual({
      button: true,
      label: 'Ran',
      disabled: true,
      note: TAKEN_NOTE
    });
    expect(offerView(run, false, true).button).toBe(false);
  });

  it('offers Run it in a trusted notebook, once', () => {
    expect(offerView(run, true, false)).toEqual({
      button: true,
      label: 'Run it',
      disabled: false,
      note: ''
    });
  });
});

describe('runInItsNotebook', () => {
  it("runs the cell in its notebook with its panel's session", async () => {
    const session = { name: 'session' };
    const panel = Object.assign(Object.create(NotebookPanel.prototype), {
      parent: null,
      sessionContext: session
    });
    const notebook = Object.assign(Object.create(Notebook.prototype), {
      parent: panel
    });
    const cell = Object.assign(editable('n', 'id'), { parent: notebook });
    await runInItsNotebook(cell);
    expect(NotebookActions.runCells).toHaveBeenCalledWith(
      notebook,
      [cell],
      session
    );
  });

  it('refuses a cell outside any notebook', async () => {
    const cell = Object.assign(editable('n', 'id'), { parent: null });
    await expect(runInItsNotebook(cell)).rejects.toThrow(/not in an open/);
  });
});
