/**
 * The buttons under a `%%devstral fix` output. The kernel displays each beside an ipywidgets
 * button (for classic Notebook and VS Code) and text/plain; here our MIME types outrank the
 * widget view:
 *
 * - `application/vnd.jupyter-devstral.restore+json` ({cell_id, original}): "Restore original"
 *   sets the cell's source back to `original` (the cell was fixed);
 * - `application/vnd.jupyter-devstral.offer+json` ({cell_id, action, source}): "Apply fix"
 *   (`apply`: an edit that runs but waits for review) sets the cell's source, and does not
 *   run it; "Run it" (`run`: a candidate that needs approval) sets it and runs the cell once,
 *   for real: the click is the approval.
 *
 * "Run it" runs at most once, ever: the offer's id (the kernel's `id`, else a hash of the
 * offer) goes into the target cell's metadata (`devstral.taken_offers`) before the run, so
 * the .ipynb remembers it; an offer whose id is recorded there renders disabled ("Ran"), and
 * a click re-checks it. And it shows only in a trusted notebook: an offer output saved in a
 * downloaded notebook could otherwise run source its reader never wrote with one click (an
 * untrusted one shows a line asking to trust the notebook first, and the code to read).
 *
 * The data is plain JSON shown as text, so the factory is safe. One factory serves both
 * types, so registering it once (index.ts) registers both.
 */
import { Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

export const RESTORE_MIME = 'application/vnd.jupyter-devstral.restore+json';
export const OFFER_MIME = 'application/vnd.jupyter-devstral.offer+json';
export const RESTORE_CLASS = 'jp-Devstral-restore';
/** Above the widget view (@jupyter-widgets registers it at rank -10): lower wins. */
export const RESTORE_RANK = -20;

export interface IRestoreData {
  cellId: string | null;
  original: string;
}

/** The renderer's data, or null when it is not ours ({cell_id, original}). */
export function parseRestore(data: unknown): IRestoreData | null {
  if (!data || typeof data !== 'object') {
    return null;
  }
  const { cell_id, original } = data as Record<string, unknown>;
  if (typeof original !== 'string') {
    return null;
  }
  return { cellId: typeof cell_id === 'string' ? cell_id : null, original };
}

export type OfferAction = 'apply' | 'run';

export interface IOfferData {
  /** the kernel's offer id, else a hash of the offer (what `taken_offers` records) */
  id: string;
  cellId: string | null;
  action: OfferAction;
  source: string;
}

/** A stable id of an offer's content (FNV-1a, 2 x 32 bits). */
export function offerHash(
  cellId: string | null,
  action: string,
  source: string
): string {
  const text = JSON.stringify([cellId, action, source]);
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0;
  }
  return (
    'h' + a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0')
  );
}

/** An offer's data, or null when it is not ours ({cell_id, action, source}). */
export function parseOffer(data: unknown): IOfferData | null {
  if (!data || typeof data !== 'object') {
    return null;
  }
  const { id, cell_id, action, source } = data as Record<string, unknown>;
  if (typeof source !== 'string' || (action !== 'apply' && action !== 'run')) {
    return null;
  }
  const cellId = typeof cell_id === 'string' ? cell_id : null;
  return {
    id:
      typeof id === 'string' && id !== ''
        ? id
        : offerHash(cellId, action, source),
    cellId,
    action,
    source
  };
}

/** What the chooser needs of a cell widget. */
export interface ICellLike {
  readonly node: unknown;
  readonly model: { readonly id: string };
}

/**
 * The cell that holds the output: the one whose node is `cellNode` (the output's own cell,
 * whichever notebook it is in); else, when the output sits outside a cell (an output view),
 * the only cell with model id `cellId`. Null when neither settles it.
 */
export function chooseCell<T extends ICellLike>(
  notebooks: ReadonlyArray<ReadonlyArray<T>>,
  cellNode: unknown,
  cellId: string | null
): T | null {
  if (cellNode) {
    for (const cells of notebooks) {
      const found = cells.find(cell => cell.node === cellNode);
      if (found) {
        return found;
      }
    }
  }
  if (cellId) {
    const matches = notebooks.flatMap(cells =>
      cells.filter(cell => cell.model.id === cellId)
    );
    if (matches.length === 1) {
      return matches[0];
    }
  }
  return null;
}

/** A cell whose source and metadata can be set (a notebook cell widget). */
export interface IRestorableCell extends ICellLike {
  readonly model: {
    readonly id: string;
    readonly sharedModel: {
      setSource(source: string): void;
      getMetadata(key: string): unknown;
      setMetadata(key: string, value: any): void;
    };
  };
}

/** The cell metadata key of what Devstral keeps on a cell. */
export const METADATA_KEY = 'devstral';

/** The offers already run into this cell (`devstral.taken_offers`, saved in the .ipynb). */
export function takenOffers(cell: IRestorableCell): string[] {
  const meta = cell.model.sharedModel.getMetadata(METADATA_KEY);
  const taken =
    meta && typeof meta === 'object'
      ? (meta as Record<string, unknown>).taken_offers
      : undefined;
  return Array.isArray(taken)
    ? taken.filter((t): t is string => typeof t === 'string')
    : [];
}

function recordTaken(cell: IRestorableCell, id: string): void {
  const meta = cell.model.sharedModel.getMetadata(METADATA_KEY);
  const kept =
    meta && typeof meta === 'object' && !Array.isArray(meta) ? meta : {};
  cell.model.sharedModel.setMetadata(METADATA_KEY, {
    ...kept,
    taken_offers: [...takenOffers(cell), id]
  });
}

/** The cells of every open notebook, one array per notebook. */
export type CellLister = () => ReadonlyArray<ReadonlyArray<IRestorableCell>>;

/** Runs one cell of an open notebook, as Shift+Enter would (its output in the notebook). */
export type CellRunner = (cell: IRestorableCell) => Promise<unknown>;

/** What a click on an offer did. */
export type OfferOutcome = 'applied' | 'ran' | 'taken' | 'not found';

/**
 * An offer taken: the chosen cell's source becomes the offered code; `run` then runs the
 * cell, once: its id is recorded in the cell's metadata first, and an offer recorded there
 * already changes nothing and runs nothing ('taken'). Nothing runs when the cell is not
 * found.
 */
export async function takeOffer(
  notebooks: ReadonlyArray<ReadonlyArray<IRestorableCell>>,
  cellNode: unknown,
  offer: IOfferData,
  runner: CellRunner
): Promise<OfferOutcome> {
  const cell = chooseCell(notebooks, cellNode, offer.cellId);
  if (!cell) {
    return 'not found';
  }
  if (offer.action === 'run') {
    if (takenOffers(cell).includes(offer.id)) {
      return 'taken';
    }
    recordTaken(cell, offer.id); // before anything runs: a reload never offers it again
  }
  cell.model.sharedModel.setSource(offer.source);
  if (offer.action !== 'run') {
    return 'applied';
  }
  await runner(cell);
  return 'ran';
}

/**
 * The default runner: the cell's own notebook and its panel's kernel session, found up the
 * widget tree (a notebook's cells are its children; the notebook is its panel's content).
 */
export async function runInItsNotebook(
  cell: IRestorableCell
): Promise<boolean> {
  let notebook: Notebook | null = null;
  for (let w = (cell as unknown as Widget).parent; w; w = w.parent) {
    if (!notebook && w instanceof Notebook) {
      notebook = w;
    }
    if (notebook && w instanceof NotebookPanel) {
      return NotebookActions.runCells(
        notebook,
        [cell as unknown as Notebook['widgets'][number]],
        w.sessionContext
      );
    }
  }
  throw new Error('the cell is not in an open notebook');
}

/** The labels of an offer's button: before, while, after. */
export const OFFER_LABELS: Record<
  OfferAction,
  { label: string; busy: string; done: string; title: string }
> = {
  apply: {
    label: 'Apply fix',
    busy: 'Applying',
    done: 'Applied',
    title:
      'Put the edit into this cell (it does not run it): review it, then run it'
  },
  run: {
    label: 'Run it',
    busy: 'Running',
    done: 'Ran',
    title:
      'Approve: put this candidate into the cell and run it once, for real, in this kernel'
  }
};

/** Said where Run it would be in a notebook that is not trusted. */
export const UNTRUSTED_NOTE =
  'This notebook is not trusted: trust it first (Command Palette: Trust Notebook) to run this candidate. Read it below.';
/** Said beside a disabled Run it whose offer this cell has run already. */
export const TAKEN_NOTE =
  'run once already: check the cell, then run it yourself if you mean to';

/** How an offer shows: its button (if any), whether it can be clicked, the line beside it. */
export interface IOfferView {
  button: boolean;
  label: string;
  disabled: boolean;
  note: string;
}

/** An offer's view from the output's trust and what its cell records. */
export function offerView(
  offer: IOfferData,
  trusted: boolean,
  taken: boolean
): IOfferView {
  const labels = OFFER_LABELS[offer.action];
  if (offer.action === 'run' && !trusted) {
    return { button: false, label: '', disabled: true, note: UNTRUSTED_NOTE };
  }
  if (offer.action === 'run' && taken) {
    return {
      button: true,
      label: labels.done,
      disabled: true,
      note: TAKEN_NOTE
    };
  }
  return { button: true, label: labels.label, disabled: false, note: '' };
}

/** A collapsed copy of `text`: what to paste when the cell cannot be found. */
function preview(what: string, text: string): HTMLDetailsElement {
  const details = document.createElement('details');
  details.className = 'jp-Devstral-restorePreview';
  const summary = document.createElement('summary');
  const lines = text.split('\n').length;
  summary.textContent = `${what} (${lines} line${lines === 1 ? '' : 's'})`;
  const pre = document.createElement('pre');
  pre.textContent = text; // text only: nothing in it is markup
  details.append(summary, pre);
  return details;
}

class RestoreRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(
    private readonly _cells: CellLister,
    private readonly _runner: CellRunner,
    private readonly _mimeType: string
  ) {
    super();
    this.addClass('jp-Devstral-restoreOutput');
  }

  private _model: IRenderMime.IMimeModel | null = null;

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this._model = model;
    this.node.textContent = '';
    if (this._mimeType === OFFER_MIME) {
      this._renderOffer(parseOffer(model.data[OFFER_MIME]), model.trusted);
      return;
    }
    const data = parseRestore(model.data[RESTORE_MIME]);
    if (!data) {
      this.node.textContent = 'devstral: no original cell text in this output';
      return;
    }
    const button = this._button('Restore original');
    button.title = 'Put the cell text from before the fix back';
    const copy = preview('original cell', data.original);
    const note = this._note();

    button.addEventListener('click', event => {
      event.stopPropagation();
      const cell = chooseCell(
        this._cells(),
        this.node.closest('.jp-Cell'),
        data.cellId
      );
      if (!cell) {
        note.textContent = 'cell not found: copy the original below';
        copy.open = true;
        return;
      }
      cell.model.sharedModel.setSource(data.original);
      button.textContent = 'Restored';
      button.disabled = true;
      note.textContent = '';
    });
    this._place(button, note, copy);
  }

  /** Attached: the output's own cell can be found now (its `taken_offers` are read). */
  protected onAfterAttach(msg: Parameters<Widget['processMessage']>[0]): void {
    super.onAfterAttach(msg);
    if (this._mimeType === OFFER_MIME && this._model) {
      this.node.textContent = '';
      const model = this._model;
      this._renderOffer(parseOffer(model.data[OFFER_MIME]), model.trusted);
    }
  }

  private _renderOffer(offer: IOfferData | null, trusted: boolean): void {
    if (!offer) {
      this.node.textContent = 'devstral: no offered code in this output';
      return;
    }
    const labels = OFFER_LABELS[offer.action];
    const target = chooseCell(
      this._cells(),
      this.node.closest('.jp-Cell'),
      offer.cellId
    );
    const view = offerView(
      offer,
      trusted,
      !!target && takenOffers(target).includes(offer.id)
    );
    const copy = preview(
      offer.action === 'run' ? 'the candidate' : 'the edit',
      offer.source
    );
    const note = this._note();
    note.textContent = view.note;
    if (!view.button) {
      copy.open = true;
      const row = document.createElement('div');
      row.className = 'jp-Devstral-restoreRow';
      row.append(note);
      this.node.append(row, copy);
      return;
    }
    const button = this._button(view.label);
    button.title = labels.title;
    button.dataset.action = offer.action;
    button.disabled = view.disabled;

    button.addEventListener('click', event => {
      event.stopPropagation();
      button.disabled = true; // once: a second click must not run it again
      button.textContent = labels.busy;
      note.textContent = '';
      takeOffer(
        this._cells(),
        this.node.closest('.jp-Cell'),
        offer,
        this._runner
      )
        .then(outcome => {
          if (outcome === 'not found') {
            note.textContent = 'cell not found: copy the code below';
            copy.open = true;
            button.textContent = labels.label;
            button.disabled = offer.action === 'run';
            return;
          }
          button.textContent = labels.done;
          if (outcome === 'taken') {
            note.textContent = TAKEN_NOTE;
          }
        })
        .catch(reason => {
          button.textContent = labels.done;
          note.textContent = `could not run the cell: ${reason}`;
        });
    });
    this._place(button, note, copy);
  }

  private _button(label: string): HTMLButtonElement {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = `${RESTORE_CLASS} jp-Button`;
    button.textContent = label;
    return button;
  }

  private _note(): HTMLSpanElement {
    const note = document.createElement('span');
    note.className = 'jp-Devstral-restoreNote';
    return note;
  }

  private _place(
    button: HTMLButtonElement,
    note: HTMLSpanElement,
    copy: HTMLDetailsElement
  ): void {
    const row = document.createElement('div');
    row.className = 'jp-Devstral-restoreRow';
    row.append(button, note);
    this.node.append(row, copy);
  }
}

/**
 * The renderer factory of both MIME types, for `rendermime.addFactory(factory,
 * RESTORE_RANK)`; `runner` runs a cell for "Run it" (default: in the cell's own notebook).
 */
export function restoreRendererFactory(
  cells: CellLister,
  runner: CellRunner = runInItsNotebook
): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [RESTORE_MIME, OFFER_MIME],
    defaultRank: RESTORE_RANK,
    createRenderer: options =>
      new RestoreRenderer(cells, runner, options.mimeType)
  };
}
