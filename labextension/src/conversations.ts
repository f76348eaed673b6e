/**
 * One conversation per notebook path, kept while the user switches tabs; the current one
 * follows the notebook tracker. A conversation stays pinned to its notebook's panel.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { ServerConnection } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { Conversation, IConversationHooks } from './conversation';
import type { DevstralSettings } from './settings';

export class Conversations {
  readonly currentChanged = new Signal<this, Conversation | null>(this);
  private _byPath = new Map<string, Conversation>();
  private _watched = new WeakSet<NotebookPanel>();
  private _current: Conversation | null = null;

  constructor(
    private readonly _serverSettings: ServerConnection.ISettings,
    private readonly _settings: DevstralSettings,
    private readonly _hooks: IConversationHooks
  ) {
    _settings.changed.connect((_, value) => {
      for (const conversation of this._byPath.values()) {
        conversation.applyDefaults(value);
      }
    });
  }

  get current(): Conversation | null {
    return this._current;
  }

  /** The conversation of this notebook (created on first use), pinned to this panel. */
  forPanel(panel: NotebookPanel): Conversation {
    const path = panel.context.path;
    let conversation = this._byPath.get(path);
    if (!conversation) {
      conversation = new Conversation(
        path,
        panel,
        this._serverSettings,
        this._settings.value,
        this._hooks
      );
      this._byPath.set(path, conversation);
    } else if (conversation.panel !== panel) {
      conversation.pin(panel);
    }
    this._watch(panel);
    return conversation;
  }

  /** Follow the notebook the user works in (null: none open). */
  setCurrent(panel: NotebookPanel | null): void {
    const next = panel && !panel.isDisposed ? this.forPanel(panel) : null;
    if (next !== this._current) {
      this._current = next;
      this.currentChanged.emit(next);
      if (next && next.connection === 'idle') {
        void next.connect(); // shows the model from `ready`; errors become a notice
      }
    }
  }

  dispose(): void {
    for (const conversation of this._byPath.values()) {
      conversation.dispose();
    }
    this._byPath.clear();
  }

  private _watch(panel: NotebookPanel): void {
    if (this._watched.has(panel)) {
      return;
    }
    this._watched.add(panel);
    panel.context.pathChanged.connect((_, newPath) => {
      for (const [path, conversation] of this._byPath) {
        if (conversation.panel === panel && path !== newPath) {
          this._byPath.delete(path);
          conversation.path = newPath;
          this._byPath.set(newPath, conversation);
        }
      }
    });
    panel.disposed.connect(() => {
      for (const conversation of this._byPath.values()) {
        if (conversation.panel === panel) {
          conversation.pin(null); // history stays; reopening the notebook pins it again
        }
      }
    });
  }
}
