/** `GET /devstral/status`: the backend and model the server runs, or why it cannot be reached. */
import type { ServerConnection } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { IModels, IServerStatus, fetchModels, fetchStatus } from './api';
import { PROTOCOL_VERSION, oneLine } from './protocol';

export class ServerStatus {
  readonly changed = new Signal<this, void>(this);
  status: IServerStatus | null = null;
  /** what the model menu offers (null until fetched, or when it failed) */
  models: IModels | null = null;
  error: string | null = null;

  async refresh(settings: ServerConnection.ISettings): Promise<void> {
    void this.refreshModels(settings);
    try {
      this.status = await fetchStatus(settings);
      this.error =
        this.status.protocol !== undefined &&
        this.status.protocol !== PROTOCOL_VERSION
          ? `the server speaks Devstral protocol ${this.status.protocol}, this page ${PROTOCOL_VERSION}: reload the page`
          : null;
    } catch (error) {
      this.status = null;
      this.error = oneLine(
        `the Devstral server extension is not reachable (GET devstral/status: ${
          (error as Error).message ?? error
        })`
      );
    }
    this.changed.emit();
  }

  async refreshModels(settings: ServerConnection.ISettings): Promise<void> {
    try {
      this.models = await fetchModels(settings);
    } catch {
      this.models = null;
    }
    this.changed.emit();
  }

  dismissError(): void {
    this.error = null;
    this.changed.emit();
  }
}
