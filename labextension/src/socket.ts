/**
 * One WebSocket per notebook: `hello` first, then wait for `ready` (a later `hello` on the
 * same socket switches chats; its `ready` comes as a message).
 *
 * Authentication as JupyterLab's own kernel sockets do it: the page's cookie, plus
 * `&token=` when the server settings carry a token meant to be appended.
 */
import { URLExt } from '@jupyterlab/coreutils';
import type { ServerConnection } from '@jupyterlab/services';

import {
  ClientMessage,
  IHello,
  IReady,
  ProtocolError,
  ServerMessage,
  oneLine,
  parseServer
} from './protocol';

const READY_TIMEOUT_MS = 20_000;

export function socketUrl(settings: ServerConnection.ISettings): string {
  let url = URLExt.join(settings.wsUrl, 'devstral', 'ws');
  if (settings.token && settings.appendToken) {
    url += '?token=' + encodeURIComponent(settings.token);
  }
  return url;
}

export interface ISocketHandlers {
  /** A valid server message after `ready`. */
  message(msg: ServerMessage): void;
  /** A message that failed the protocol check (the raw JSON when it parsed). */
  invalid(raw: unknown, error: ProtocolError): void;
  /** The socket closed (by either side); `ready` tells whether it had got that far. */
  closed(info: { code: number; reason: string; ready: boolean }): void;
}

export class DevstralSocket {
  private _ws: WebSocket | null = null;
  private _opening: Promise<IReady> | null = null;
  private _ready = false;

  constructor(
    private readonly _settings: ServerConnection.ISettings,
    private readonly _handlers: ISocketHandlers
  ) {}

  get isReady(): boolean {
    return this._ready && this._ws?.readyState === WebSocket.OPEN;
  }

  /** Open (or reuse) the socket and say hello; resolves with the server's `ready`. */
  open(greeting: IHello): Promise<IReady> {
    if (this._opening) {
      return this._opening;
    }
    this._opening = new Promise<IReady>((resolve, reject) => {
      const WS = this._settings.WebSocket ?? WebSocket;
      let ws: WebSocket;
      try {
        ws = new WS(socketUrl(this._settings));
      } catch (error) {
        this._opening = null;
        reject(new Error(oneLine(`cannot open the Devstral socket: ${error}`)));
        return;
      }
      this._ws = ws;
      this._ready = false;
      let settled = false;
      const fail = (why: string) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          this._opening = null;
          reject(new Error(oneLine(why)));
        }
      };
      const timer = setTimeout(() => {
        fail('the Devstral server did not answer hello');
        ws.close();
      }, READY_TIMEOUT_MS);

      ws.onopen = () => ws.send(JSON.stringify(greeting));
      ws.onmessage = event => {
        let raw: unknown;
        let msg: ServerMessage;
        try {
          raw = JSON.parse(String(event.data));
          msg = parseServer(raw);
        } catch (error) {
          const problem =
            error instanceof ProtocolError
              ? error
              : new ProtocolError(
                  `not JSON: ${oneLine(String(event.data), 80)}`
                );
          this._handlers.invalid(raw, problem);
          return;
        }
        if (!settled) {
          if (msg.type === 'ready') {
            settled = true;
            clearTimeout(timer);
            this._ready = true;
            resolve(msg);
          } else if (msg.type === 'error') {
            fail(msg.message);
            ws.close();
          }
          return;
        }
        this._handlers.message(msg);
      };
      ws.onclose = event => {
        const wasReady = this._ready;
        this._ready = false;
        if (this._ws === ws) {
          this._ws = null;
          this._opening = null;
        }
        fail(
          `cannot connect to the Devstral server (the socket closed, code ${event.code}${
            event.reason ? ': ' + event.reason : ''
          })`
        );
        this._handlers.closed({
          code: event.code,
          reason: event.reason,
          ready: wasReady
        });
      };
    });
    return this._opening;
  }

  send(msg: ClientMessage): void {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
      throw new Error('the Devstral socket is not open');
    }
    this._ws.send(JSON.stringify(msg));
  }

  close(): void {
    this._ws?.close();
  }
}
