/**
 * "Fix with Devstral" on the error of a code cell whose run failed: a compact button at the
 * top right of the error output, beside the traceback's first line, so it is on screen
 * where the error is (not below a long traceback). It goes away when the cell runs again.
 * The cell toolbar's Fix item (schema/cell-toolbar.json) runs the same command.
 */
import { Cell, CodeCell } from '@jupyterlab/cells';
import { Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { buildIcon } from '@jupyterlab/ui-components';
import type { Widget } from '@lumino/widgets';

export const FIX_BUTTON_CLASS = 'jp-Devstral-fixButton';
/** Set on the output (child) that holds the button: it positions the button. */
const HOST_CLASS = 'jp-Devstral-fixHost';

/** The icon of the Fix action (JupyterLab's wrench, themed like its other icons). */
export const fixIcon = buildIcon;

/** The output widget showing a cell's error, if it is on the page. */
function errorOutput(cell: CodeCell): Widget | null {
  const outputs = cell.model.outputs;
  for (let i = 0; i < outputs.length; i++) {
    if (outputs.get(i).type === 'error') {
      return cell.outputArea.widgets[i] ?? null;
    }
  }
  return null;
}

export class FixButtons {
  private _buttons = new WeakMap<Cell, HTMLElement>();
  private _waits = new WeakMap<Cell, number>();

  constructor(
    private readonly _onFix: (panel: NotebookPanel, cellId: string) => void
  ) {
    NotebookActions.executed.connect(this._onExecuted, this);
    NotebookActions.executionScheduled.connect(this._onScheduled, this);
  }

  dispose(): void {
    NotebookActions.executed.disconnect(this._onExecuted, this);
    NotebookActions.executionScheduled.disconnect(this._onScheduled, this);
  }

  /** After a run the extension did itself (agent `run_cell`). */
  update(panel: NotebookPanel, cellId: string, failed: boolean): void {
    const cell = panel.content.widgets.find(
      w => w.model.sharedModel.getId() === cellId
    );
    if (cell instanceof CodeCell) {
      this._set(panel, cell, failed);
    }
  }

  private _onExecuted(
    _: unknown,
    args: { notebook: Notebook; cell: Cell; success: boolean }
  ): void {
    const panel = args.notebook.parent;
    if (args.cell instanceof CodeCell && panel instanceof NotebookPanel) {
      this._set(panel, args.cell, !args.success);
    }
  }

  private _onScheduled(_: unknown, args: { cell: Cell }): void {
    this._remove(args.cell);
  }

  private _button(panel: NotebookPanel, cell: CodeCell): HTMLElement {
    const button = document.createElement('button');
    button.className = `${FIX_BUTTON_CLASS} jp-Button`;
    button.type = 'button';
    button.title = 'Ask Devstral to fix this cell (Alt Shift D)';
    const icon = fixIcon.element({
      tag: 'span',
      className: 'jp-Devstral-fixIcon'
    });
    const label = document.createElement('span');
    label.textContent = 'Fix with Devstral';
    button.append(icon, label);
    button.addEventListener('mousedown', event => event.stopPropagation());
    button.addEventListener('click', event => {
      event.stopPropagation();
      this._onFix(panel, cell.model.sharedModel.getId());
    });
    return button;
  }

  private _set(panel: NotebookPanel, cell: CodeCell, failed: boolean): void {
    this._remove(cell);
    if (!failed || cell.isDisposed) {
      return;
    }
    const button = this._button(panel, cell);
    this._buttons.set(cell, button);
    // the error output may arrive a moment after the run's reply
    let tries = 0;
    const place = () => {
      this._waits.delete(cell);
      if (cell.isDisposed || this._buttons.get(cell) !== button) {
        return;
      }
      const output = errorOutput(cell);
      if (output) {
        output.addClass(HOST_CLASS);
        output.node.appendChild(button);
      } else if (++tries < 20) {
        this._waits.set(cell, window.setTimeout(place, 50));
      } else {
        // no error output to sit on (cleared, or hidden): below the outputs
        const wrapper = cell.node.querySelector('.jp-Cell-outputWrapper');
        if (wrapper) {
          wrapper.after(button);
        } else {
          cell.node.appendChild(button);
        }
      }
    };
    place();
  }

  private _remove(cell: Cell): void {
    window.clearTimeout(this._waits.get(cell));
    this._waits.delete(cell);
    const button = this._buttons.get(cell);
    button?.parentElement?.classList.remove(HOST_CLASS);
    button?.remove();
    this._buttons.delete(cell);
  }
}
