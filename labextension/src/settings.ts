/**
 * UI preferences (never secrets): `schema/plugin.json`. The edit and run policies here are
 * the defaults of a notebook seen for the first time; each notebook's own are stored on the
 * server with its chats (the header's selects change them).
 */
import type { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Signal } from '@lumino/signaling';

import type { Mode } from './protocol';

export type EditPolicy = 'auto' | 'ask';
export type RunPolicy = 'ask' | 'auto';

export interface IDevstralSettings {
  defaultMode: Mode;
  editPolicy: EditPolicy;
  runPolicy: RunPolicy;
  openPanelOnFix: boolean;
}

export const DEFAULT_SETTINGS: IDevstralSettings = {
  defaultMode: 'ask',
  editPolicy: 'ask',
  runPolicy: 'ask',
  openPanelOnFix: true
};

/** The current preferences, updated when the user edits them. */
export class DevstralSettings {
  readonly changed = new Signal<this, IDevstralSettings>(this);
  private _value: IDevstralSettings = { ...DEFAULT_SETTINGS };

  get value(): IDevstralSettings {
    return this._value;
  }

  /** Follow the setting registry's values for this plugin. */
  watch(settings: ISettingRegistry.ISettings): void {
    const read = () => {
      const c = settings.composite as Partial<IDevstralSettings>;
      this._value = {
        defaultMode: c.defaultMode === 'agent' ? 'agent' : 'ask',
        editPolicy: c.editPolicy === 'auto' ? 'auto' : 'ask',
        runPolicy: c.runPolicy === 'auto' ? 'auto' : 'ask',
        openPanelOnFix: c.openPanelOnFix !== false
      };
      this.changed.emit(this._value);
    };
    read();
    settings.changed.connect(read);
  }
}
