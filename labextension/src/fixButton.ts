/**
 * "Fix with Devstral" under a code cell whose run ended with an error; it goes away when
 * the cell runs again.
 */
import { Cell, CodeCell } from '@jupyterlab/cells';
import { Notebook, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

export const FIX_BUTTON_CLASS = 'jp-Devstral-fixButton';

export class FixButtons {
  private _buttons = new WeakMap<Cell, HTMLElement>();

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

  private _set(panel: NotebookPanel, cell: CodeCell, failed: boolean): void {
    this._remove(cell);
    if (!failed || cell.isDisposed) {
      return;
    }
    const button = document.createElement('button');
    button.className = `${FIX_BUTTON_CLASS} jp-Button`;
    button.type = 'button';
    button.textContent = 'Fix with Devstral';
    button.title = 'Ask Devstral to fix this cell (Alt Shift D)';
    button.addEventListener('click', event => {
      event.stopPropagation();
      this._onFix(panel, cell.model.sharedModel.getId());
    });
    // below the outputs (the output wrapper is a row: inside it the button would sit beside them)
    const outputs = cell.node.querySelector('.jp-Cell-outputWrapper');
    if (outputs) {
      outputs.after(button);
    } else {
      cell.node.appendChild(button);
    }
    this._buttons.set(cell, button);
  }

  private _remove(cell: Cell): void {
    this._buttons.get(cell)?.remove();
    this._buttons.delete(cell);
  }
}
