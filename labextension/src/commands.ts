/** The commands: open the panel, fix a cell, undo the last agent turn. */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { ICommandPalette } from '@jupyterlab/apputils';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import type { Conversations } from './conversations';
import { fixIcon } from './fixButton';
import type { DevstralSettings } from './settings';

export const SIDEBAR_ID = 'devstral-sidebar';

export namespace CommandIDs {
  export const open = 'devstral:open';
  export const fixCell = 'devstral:fix-cell';
  export const undoTurn = 'devstral:undo-turn';
}

/** Keyboard shortcut of `devstral:fix-cell` (set in schema/plugin.json). */
export const FIX_SHORTCUT = 'Alt Shift D';

export interface ICommandContext {
  app: JupyterFrontEnd;
  tracker: INotebookTracker;
  conversations: Conversations;
  settings: DevstralSettings;
  palette: ICommandPalette | null;
}

/** Send a `fix` turn for one cell of one notebook (the button and the command). */
export function fixCell(
  ctx: ICommandContext,
  panel: NotebookPanel,
  cellId: string
): void {
  const conversation = ctx.conversations.forPanel(panel);
  if (ctx.tracker.currentWidget === panel) {
    ctx.conversations.setCurrent(panel);
  }
  if (ctx.settings.value.openPanelOnFix) {
    ctx.app.shell.activateById(SIDEBAR_ID);
  }
  void conversation.fix(cellId);
}

export function addCommands(ctx: ICommandContext): void {
  const { app, tracker, conversations, palette } = ctx;

  app.commands.addCommand(CommandIDs.open, {
    label: 'Devstral: Open Panel',
    caption: 'Open the Devstral sidebar',
    execute: () => app.shell.activateById(SIDEBAR_ID)
  });

  const activeIsCode = () => tracker.activeCell?.model.type === 'code';
  app.commands.addCommand(CommandIDs.fixCell, {
    // the cell toolbar (schema/cell-toolbar.json) labels its item itself
    label: args => (args.toolbar ? '' : 'Fix with Devstral'),
    caption: `Ask Devstral to fix the active code cell (${FIX_SHORTCUT})`,
    icon: fixIcon,
    isEnabled: activeIsCode,
    // the cell toolbar sits on the active cell: only code cells get the item
    isVisible: args => !args.toolbar || activeIsCode(),
    execute: args => {
      const panel = tracker.currentWidget;
      const cellId =
        (args.cellId as string | undefined) ??
        tracker.activeCell?.model.sharedModel.getId();
      if (panel && cellId) {
        fixCell(ctx, panel, cellId);
      }
    }
  });

  app.commands.addCommand(CommandIDs.undoTurn, {
    label: 'Devstral: Undo Agent Turn',
    caption: 'Put the notebook back as it was before the last agent turn',
    isEnabled: () => !!conversations.current?.canUndo,
    execute: () => {
      conversations.current?.undoTurn();
    }
  });

  app.contextMenu.addItem({
    command: CommandIDs.fixCell,
    selector: '.jp-Notebook .jp-CodeCell',
    rank: 20
  });

  if (palette) {
    const category = 'Devstral';
    for (const command of [
      CommandIDs.open,
      CommandIDs.fixCell,
      CommandIDs.undoTurn
    ]) {
      palette.addItem({ command, category });
    }
  }
}
