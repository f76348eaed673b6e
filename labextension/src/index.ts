/**
 * Plugin wiring only: the Devstral sidebar, its commands, the Fix buttons and the
 * renderer of `%%devstral fix`'s "Restore original"; and the cell toolbar's Fix item
 * (a plugin of its own so that its schema, schema/cell-toolbar.json, can declare it).
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { ICommandContext, SIDEBAR_ID, addCommands, fixCell } from './commands';
import { configureRendering } from './components/render';
import { Conversations } from './conversations';
import { FixButtons } from './fixButton';
import { RESTORE_RANK, restoreRendererFactory } from './restoreRenderer';
import { ServerStatus } from './serverStatus';
import { DevstralSettings } from './settings';
import { DevstralSidebar } from './sidebar';

const PLUGIN_ID = 'jupyter-devstral:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Devstral in a right sidebar: chat, agent edits by cell id, Fix with Devstral.',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [
    ICommandPalette,
    ISettingRegistry,
    ILayoutRestorer,
    IEditorLanguageRegistry
  ],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    languages: IEditorLanguageRegistry | null
  ) => {
    // answers render through JupyterLab: its markdown parser, sanitizer and highlighting
    configureRendering({ rendermime, languages });
    const serverSettings = app.serviceManager.serverSettings;
    const settings = new DevstralSettings();
    const conversations = new Conversations(serverSettings, settings, {
      cellRan: (panel, cellId, failed) =>
        fixButtons.update(panel, cellId, failed)
    });
    const ctx: ICommandContext = {
      app,
      tracker,
      conversations,
      settings,
      palette
    };
    const fixButtons = new FixButtons((panel, cellId) =>
      fixCell(ctx, panel, cellId)
    );

    // notebooks clone the app's registry when they open: registered here, every one has it
    const openCells = () => {
      const notebooks: NotebookPanel[] = [];
      tracker.forEach(panel => notebooks.push(panel));
      return notebooks.map(panel => panel.content.widgets);
    };
    rendermime.addFactory(restoreRendererFactory(openCells), RESTORE_RANK);

    const server = new ServerStatus();
    void server.refresh(serverSettings);

    const sidebar = new DevstralSidebar(conversations, server);
    app.shell.add(sidebar, 'right', { rank: 1000 });
    restorer?.add(sidebar, SIDEBAR_ID);

    addCommands(ctx);
    tracker.currentChanged.connect((_, panel) =>
      conversations.setCurrent(panel)
    );

    const start = () => conversations.setCurrent(tracker.currentWidget);
    if (registry) {
      registry
        .load(PLUGIN_ID)
        .then(values => settings.watch(values))
        .catch(reason => console.warn('Devstral: settings not loaded:', reason))
        .then(start);
    } else {
      start();
    }
  }
};

/**
 * The cell toolbar's "Fix" item: declared by schema/cell-toolbar.json
 * (`jupyter.lab.toolbars` "Cell"), which JupyterLab's cell toolbar reads from every plugin;
 * the command it runs (`devstral:fix-cell`) comes from the main plugin.
 */
const cellToolbar: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-devstral:cell-toolbar',
  description: 'Fix with Devstral in the cell toolbar of code cells.',
  autoStart: true,
  activate: () => undefined
};

export default [plugin, cellToolbar];
