// The live channel: one websocket per tab, reconnected with backoff, subscriptions replayed.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IPlatformStats, IReplica, IRun, ISession } from './api';
import { ROUTE_PREFIX } from './request';

export interface ISessionsMessage {
  type: 'sessions';
  t: number;
  sessions: ISession[];
  runs: IRun[];
  error?: string;
  /** Platform stats pushed with the list (newer servers). */
  stats?: IPlatformStats;
}

/**
 * Only what changed since the last sessions message this tab got (servers with issue 14's
 * deltas, asked for with `deltas: true`): sessions and runs new to the tab come whole, known
 * ones as their key plus the changed fields (null for a field that went away), a run's
 * changed replicas in `replica_changes`.
 */
export interface ISessionsDeltaMessage {
  type: 'sessions_delta';
  t: number;
  sessions: (Partial<ISession> & { id: string })[];
  removed: string[];
  runs: (Partial<IRun> & {
    name: string;
    replica_changes?: (Partial<IReplica> & { index: number })[];
  })[];
  runs_removed: string[];
  error: string | null;
  stats?: IPlatformStats;
}

export interface ILogMessage {
  type: 'log';
  session: string;
  run: string | null;
  replica: number | null;
  offset: number;
  next_offset: number;
  text: string;
}

export interface ILogEndMessage {
  type: 'log_end';
  session: string;
  status: string;
}

export interface IRunEndedMessage {
  type: 'run_ended';
  run: IRun;
}

export interface IErrorMessage {
  type: 'error';
  message: string;
}

export type LiveMessage =
  | ISessionsMessage
  | ISessionsDeltaMessage
  | ILogMessage
  | ILogEndMessage
  | IRunEndedMessage
  | IErrorMessage;

/** `connecting` (first try or a retry), `open`, `waiting` (to retry), `disposed`. */
export type ConnectionState = 'connecting' | 'open' | 'waiting' | 'disposed';

export interface IBackoff {
  /** First retry delay, ms. */
  initial: number;
  /** Longest delay, ms. */
  max: number;
  factor: number;
}

export const DEFAULT_BACKOFF: IBackoff = {
  initial: 500,
  max: 30_000,
  factor: 2
};

/** The delay before retry number `attempt` (0-based): exponential, capped, with jitter. */
export function retryDelay(
  attempt: number,
  backoff: IBackoff,
  random: () => number = Math.random
): number {
  const base = Math.min(
    backoff.max,
    backoff.initial * backoff.factor ** attempt
  );
  return Math.round(base * (0.5 + random() / 2));
}

/** The websocket URL of the live channel, with the token when the server wants it there. */
export function liveUrl(settings: ServerConnection.ISettings): string {
  let url = URLExt.join(settings.wsUrl, ROUTE_PREFIX, 'live');
  if (settings.token && settings.appendToken) {
    url += `?token=${encodeURIComponent(settings.token)}`;
  }
  return url;
}

/**
 * A self-healing connection to `<base_url>/canfar-jlab/live`.
 *
 * Subscriptions are sticky: they are sent when made and again after every reconnect, logs
 * from the offset the caller says it has reached, so nothing arrives twice or goes missing.
 */
export class LiveConnection implements IDisposable {
  constructor(
    readonly serverSettings: ServerConnection.ISettings,
    backoff: IBackoff = DEFAULT_BACKOFF
  ) {
    this._backoff = backoff;
  }

  get message(): ISignal<this, LiveMessage> {
    return this._message;
  }

  get stateChanged(): ISignal<this, ConnectionState> {
    return this._stateChanged;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** How many times the socket was opened (1 after the first connect). */
  get opens(): number {
    return this._opens;
  }

  get isDisposed(): boolean {
    return this._state === 'disposed';
  }

  /** Open the socket (it then stays open, reconnecting as needed, until disposed). */
  connect(): void {
    if (this._socket || this.isDisposed) {
      return;
    }
    clearTimeout(this._timer);
    this._setState('connecting');
    const socket = new this.serverSettings.WebSocket(
      liveUrl(this.serverSettings)
    );
    this._socket = socket;
    socket.onopen = () => {
      this._attempt = 0;
      this._opens++;
      this._setState('open');
      if (this._sessions) {
        this._send({ op: 'subscribe', topic: 'sessions', deltas: true });
      }
      for (const [session, offset] of this._logs) {
        this._send({
          op: 'subscribe',
          topic: 'logs',
          session,
          offset: offset(),
          ...(this._hidden.has(session) ? { visible: false } : {})
        });
      }
    };
    socket.onmessage = event => {
      let message: LiveMessage;
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return; // not ours to interpret
      }
      this._message.emit(message);
    };
    socket.onclose = () => {
      if (this._socket === socket) {
        this._socket = null;
        this._retry();
      }
    };
    socket.onerror = () => {
      // onclose follows and schedules the retry
    };
  }

  /** Ask for `sessions` messages: at once, on every change, and after each reconnect. */
  subscribeSessions(): void {
    this._sessions = true;
    // Servers that know deltas send one whole list, then only changes; others ignore it.
    this._send({ op: 'subscribe', topic: 'sessions', deltas: true });
  }

  /**
   * Follow a session's log from `offset()` (asked again at every reconnect). `visible` says
   * whether a person sees it now: servers read shown logs often and hidden ones lazily.
   */
  subscribeLogs(session: string, offset: () => number, visible = true): void {
    this._logs.set(session, offset);
    this._setHidden(session, !visible);
    this._send({
      op: 'subscribe',
      topic: 'logs',
      session,
      offset: offset(),
      ...(visible ? {} : { visible: false })
    });
  }

  /** Say that a followed log is now shown (or no longer shown) on screen. */
  setLogVisible(session: string, visible: boolean): void {
    if (!this._logs.has(session) || this._hidden.has(session) === !visible) {
      return;
    }
    this._setHidden(session, !visible);
    this._send({ op: 'visible', topic: 'logs', session, visible });
  }

  unsubscribeLogs(session: string): void {
    this._hidden.delete(session);
    if (this._logs.delete(session)) {
      this._send({ op: 'unsubscribe', topic: 'logs', session });
    }
  }

  private _setHidden(session: string, hidden: boolean): void {
    if (hidden) {
      this._hidden.add(session);
    } else {
      this._hidden.delete(session);
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    clearTimeout(this._timer);
    this._setState('disposed');
    const socket = this._socket;
    this._socket = null;
    socket?.close();
    Signal.clearData(this);
  }

  private _retry(): void {
    if (this.isDisposed) {
      return;
    }
    this._setState('waiting');
    const delay = retryDelay(this._attempt++, this._backoff);
    this._timer = setTimeout(() => this.connect(), delay);
  }

  private _send(message: object): void {
    if (this._socket && this._socket.readyState === 1) {
      this._socket.send(JSON.stringify(message));
    }
  }

  private _setState(state: ConnectionState): void {
    if (state !== this._state) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _backoff: IBackoff;
  private _socket: WebSocket | null = null;
  private _state: ConnectionState = 'connecting';
  private _attempt = 0;
  private _opens = 0;
  private _timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private _sessions = false;
  private _logs = new Map<string, () => number>();
  private _hidden = new Set<string>();
  private _message = new Signal<this, LiveMessage>(this);
  private _stateChanged = new Signal<this, ConnectionState>(this);
}

/** The lists after a `sessions_delta`: `sessions` and `runs` as a whole message would carry. */
export function applySessionsDelta(
  sessions: readonly ISession[],
  runs: readonly IRun[],
  delta: ISessionsDeltaMessage
): { sessions: ISession[]; runs: IRun[] } {
  const byId = new Map(sessions.map(s => [s.id, s]));
  for (const id of delta.removed ?? []) {
    byId.delete(id);
  }
  for (const change of delta.sessions ?? []) {
    const old = byId.get(change.id);
    byId.set(change.id, (old ? { ...old, ...change } : change) as ISession);
  }
  const gone = new Set(delta.runs_removed ?? []);
  const byName = new Map(
    runs.filter(r => !gone.has(r.name)).map(r => [r.name, r])
  );
  const added: IRun[] = [];
  for (const change of delta.runs ?? []) {
    const { replica_changes, ...fields } = change;
    const old = byName.get(change.name);
    if (!old) {
      added.push(change as IRun);
      byName.set(change.name, change as IRun);
      continue;
    }
    let replicas = old.replicas;
    if (replica_changes?.length) {
      const byIndex = new Map(replicas.map(r => [r.index, r]));
      for (const rc of replica_changes) {
        const was = byIndex.get(rc.index);
        byIndex.set(rc.index, (was ? { ...was, ...rc } : rc) as IReplica);
      }
      replicas = [...byIndex.values()].sort((a, b) => a.index - b.index);
    }
    byName.set(change.name, { ...old, ...fields, replicas } as IRun);
  }
  // Known runs keep their places; new ones go first (the list is newest first).
  const known = runs
    .filter(r => byName.has(r.name))
    .map(r => byName.get(r.name)!);
  return {
    sessions: [...byId.values()],
    runs: [...added.filter(r => !runs.some(o => o.name === r.name)), ...known]
  };
}
