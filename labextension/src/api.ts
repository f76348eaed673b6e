/** REST calls to the server extension (`/devstral/...`), XSRF and token handled by JupyterLab. */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IServerStatus {
  version: string;
  protocol: number;
  backend: string;
  model: string;
  loaded: boolean;
  state?: string;
  /** why no turn can run (no model configured...), in words that say what to set */
  problem?: string | null;
}

/** A model the user may switch a chat to (`GET devstral/models`). */
export interface IModelChoice {
  name: string;
  backend: string;
  model: string;
  /** the server's configured model */
  configured?: boolean;
}

export interface IModels {
  models: IModelChoice[];
  current: { backend: string; model: string };
  /** an admin narrowed the list (DevstralServerApp.allowed_models) */
  restricted: boolean;
}

export async function requestAPI<T>(
  endPoint: string,
  settings: ServerConnection.ISettings,
  init: RequestInit = {}
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'devstral', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = text;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
  }
  if (!response.ok) {
    const message =
      (data as { message?: string })?.message ??
      `${response.status} ${response.statusText}`;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

export function fetchStatus(
  settings: ServerConnection.ISettings
): Promise<IServerStatus> {
  return requestAPI<IServerStatus>('status', settings);
}

export function fetchModels(
  settings: ServerConnection.ISettings
): Promise<IModels> {
  return requestAPI<IModels>('models', settings);
}
