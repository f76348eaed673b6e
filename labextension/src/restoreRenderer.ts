/**
 * "Restore original" under a cell that `%%devstral fix` rewrote. The kernel displays
 * `application/vnd.jupyter-devstral.restore+json` ({cell_id, original}) beside an ipywidgets
 * button (for classic Notebook and VS Code) and text/plain; here that MIME type outranks the
 * widget view, and its button sets the cell's source back to `original`. The data is plain
 * JSON shown as text, so the factory is safe.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

export const RESTORE_MIME = 'application/vnd.jupyter-devstral.restore+json';
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

/** A cell whose source can be set (a notebook cell widget). */
export interface IRestorableCell extends ICellLike {
  readonly model: {
    readonly id: string;
    readonly sharedModel: { setSource(source: string): void };
  };
}

/** The cells of every open notebook, one array per notebook. */
export type CellLister = () => ReadonlyArray<ReadonlyArray<IRestorableCell>>;

class RestoreRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly _cells: CellLister) {
    super();
    this.addClass('jp-Devstral-restoreOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.node.textContent = '';
    const data = parseRestore(model.data[RESTORE_MIME]);
    if (!data) {
      this.node.textContent = 'devstral: no original cell text in this output';
      return;
    }
    const button = document.createElement('button');
    button.type = 'button';
    button.className = `${RESTORE_CLASS} jp-Button`;
    button.textContent = 'Restore original';
    button.title = 'Put the cell text from before the fix back';

    const preview = document.createElement('details');
    preview.className = 'jp-Devstral-restorePreview';
    const summary = document.createElement('summary');
    const lines = data.original.split('\n').length;
    summary.textContent = `original cell (${lines} line${lines === 1 ? '' : 's'})`;
    const pre = document.createElement('pre');
    pre.textContent = data.original; // text only: nothing in it is markup
    preview.append(summary, pre);

    const note = document.createElement('span');
    note.className = 'jp-Devstral-restoreNote';

    button.addEventListener('click', event => {
      event.stopPropagation();
      const cell = chooseCell(
        this._cells(),
        this.node.closest('.jp-Cell'),
        data.cellId
      );
      if (!cell) {
        note.textContent = 'cell not found: copy the original below';
        preview.open = true;
        return;
      }
      cell.model.sharedModel.setSource(data.original);
      button.textContent = 'Restored';
      button.disabled = true;
      note.textContent = '';
    });

    const row = document.createElement('div');
    row.className = 'jp-Devstral-restoreRow';
    row.append(button, note);
    this.node.append(row, preview);
  }
}

/** The renderer factory, for `rendermime.addFactory(factory, RESTORE_RANK)`. */
export function restoreRendererFactory(
  cells: CellLister
): IRenderMime.IRendererFactory {
  return {
    safe: true,
    mimeTypes: [RESTORE_MIME],
    defaultRank: RESTORE_RANK,
    createRenderer: () => new RestoreRenderer(cells)
  };
}
