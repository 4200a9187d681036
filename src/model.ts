// Runs and sessions as the live channel reports them, with usage history, log buffers and
// end-of-run detection. Views listen to the signals; nothing here touches the DOM.
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IPlatformStats, IRun, ISession } from './api';
import {
  applySessionsDelta,
  ConnectionState,
  LiveConnection,
  LiveMessage
} from './live';
import { ILogBufferOptions, LogBuffer } from './logbuffer';
import type { ICanfarModel } from './tokens';
import { UsageHistory } from './usage';

/** One attempt of a run: the same run re-run gets new session ids, so a new key. */
function attemptKey(run: IRun): string {
  const ids = run.replicas.map(r => r.session_id ?? '-').join(',');
  return `${run.name}|${ids}`;
}

/** The model other extensions get through the ICanfarModel token (src/tokens.ts). */
export class CanfarModel implements ICanfarModel, IDisposable {
  constructor(
    readonly live: LiveConnection,
    options: { logs?: ILogBufferOptions; usageSamples?: number } = {}
  ) {
    this._logOptions = options.logs ?? {};
    this.usage = new UsageHistory(options.usageSamples ?? 60);
    live.message.connect(this._onMessage, this);
    live.stateChanged.connect(this._onState, this);
    live.subscribeSessions();
  }

  /** CPU and memory samples per session. */
  readonly usage: UsageHistory;

  /** Something in the lists changed (sessions, runs, usage, connection). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A run's last replica ended (once per attempt). */
  get runEnded(): ISignal<this, IRun> {
    return this._runEnded;
  }

  /** Platform stats the server pushed with a session list (newer servers). */
  get statsReceived(): ISignal<this, IPlatformStats> {
    return this._statsReceived;
  }

  /** The server reported a problem on the live channel. */
  get errorReceived(): ISignal<this, string> {
    return this._errorReceived;
  }

  get connection(): ConnectionState {
    return this.live.state;
  }

  /** Whether the first `sessions` message has arrived. */
  get loaded(): boolean {
    return this._loaded;
  }

  /** The session service's last complaint (it was unreachable), or null. */
  get upstreamError(): string | null {
    return this._upstreamError;
  }

  get runs(): readonly IRun[] {
    return this._runs;
  }

  get sessions(): readonly ISession[] {
    return this._sessions;
  }

  get sessionsById(): ReadonlyMap<string, ISession> {
    return this._byId;
  }

  run(name: string): IRun | undefined {
    return this._runs.find(r => r.name === name);
  }

  /** Sessions that belong to no known run (made by the magic, the CLI or `canfar`). */
  standaloneSessions(): ISession[] {
    const owned = new Set<string>();
    for (const run of this._runs) {
      for (const replica of run.replicas) {
        if (replica.session_id) {
          owned.add(replica.session_id);
        }
      }
    }
    return this._sessions.filter(s => !s.run && !owned.has(s.id));
  }

  /** Take a run the server just returned (launch, re-run) before the next live message. */
  updateRun(run: IRun): void {
    if (run.state === 'active') {
      this._seenActive.add(attemptKey(run));
    }
    const index = this._runs.findIndex(r => r.name === run.name);
    this._runs =
      index < 0
        ? [run, ...this._runs]
        : this._runs.map((r, i) => (i === index ? run : r));
    this._changed.emit();
  }

  /**
   * The log of a session, followed live until every `openLog` is matched by `closeLog`.
   * `shown` says whether the caller shows it now (see `showLog`).
   */
  openLog(sessionId: string, shown = true): LogBuffer {
    let entry = this._logs.get(sessionId);
    if (!entry) {
      const buffer = new LogBuffer(this._logOptions);
      entry = { buffer, users: 0, shown: 0 };
      this._logs.set(sessionId, entry);
      this.live.subscribeLogs(sessionId, () => buffer.nextOffset, shown);
    }
    entry.users++;
    if (shown) {
      this.showLog(sessionId, true);
    }
    return entry.buffer;
  }

  /**
   * A viewer of an open log started (or stopped) showing it: the server hears when the first
   * viewer shows it and when the last one hides it.
   */
  showLog(sessionId: string, shown: boolean): void {
    const entry = this._logs.get(sessionId);
    if (!entry) {
      return;
    }
    entry.shown = Math.max(0, entry.shown + (shown ? 1 : -1));
    this.live.setLogVisible(sessionId, entry.shown > 0);
  }

  closeLog(sessionId: string, shown = false): void {
    const entry = this._logs.get(sessionId);
    if (!entry) {
      return;
    }
    if (shown) {
      this.showLog(sessionId, false);
    }
    if (--entry.users <= 0) {
      this._logs.delete(sessionId);
      this.live.unsubscribeLogs(sessionId);
    }
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.live.message.disconnect(this._onMessage, this);
    this.live.stateChanged.disconnect(this._onState, this);
    Signal.clearData(this);
  }

  private _onMessage(_: LiveConnection, message: LiveMessage): void {
    switch (message.type) {
      case 'sessions':
        this._onSessions(
          message.t,
          message.sessions,
          message.runs,
          message.error
        );
        if (message.stats) {
          this._statsReceived.emit(message.stats);
        }
        break;
      case 'sessions_delta': {
        const { sessions, runs } = applySessionsDelta(
          this._sessions,
          this._runs,
          message
        );
        this._onSessions(message.t, sessions, runs, message.error ?? undefined);
        if (message.stats) {
          this._statsReceived.emit(message.stats);
        }
        break;
      }
      case 'log': {
        const entry = this._logs.get(message.session);
        entry?.buffer.append(message.offset, message.next_offset, message.text);
        break;
      }
      case 'log_end':
        this._logs.get(message.session)?.buffer.end(message.status);
        break;
      case 'run_ended': {
        const run = message.run;
        this._runs = this._runs.map(r => (r.name === run.name ? run : r));
        // Only news if this tab saw the attempt running: a new subscriber may be sent the
        // end of a run that finished before it looked.
        if (this._seenActive.has(attemptKey(run))) {
          this._ended(run);
        }
        this._changed.emit();
        break;
      }
      case 'error':
        this._errorReceived.emit(message.message);
        break;
    }
  }

  private _onSessions(
    t: number,
    sessions: ISession[],
    runs: IRun[],
    error: string | undefined
  ): void {
    this._loaded = true;
    this._upstreamError = error ?? null;
    if (error && sessions.length === 0 && this._sessions.length > 0) {
      // The service did not answer: keep showing what we knew, with the error.
      this._changed.emit();
      return;
    }
    this._sessions = sessions;
    this._byId = new Map(sessions.map(s => [s.id, s]));
    this._runs = runs;
    this.usage.record(t, sessions);
    for (const run of runs) {
      const key = attemptKey(run);
      if (run.state === 'active') {
        this._seenActive.add(key);
      } else if (this._seenActive.has(key)) {
        this._ended(run);
      }
    }
    this._changed.emit();
  }

  private _ended(run: IRun): void {
    const key = attemptKey(run);
    if (this._notified.has(key)) {
      return;
    }
    this._notified.add(key);
    this._seenActive.delete(key);
    this._runEnded.emit(run);
  }

  private _onState(): void {
    this._changed.emit();
  }

  private _disposed = false;
  private _loaded = false;
  private _upstreamError: string | null = null;
  private _runs: IRun[] = [];
  private _sessions: ISession[] = [];
  private _byId: Map<string, ISession> = new Map();
  private _logs = new Map<
    string,
    { buffer: LogBuffer; users: number; shown: number }
  >();
  private _logOptions: ILogBufferOptions;
  private _seenActive = new Set<string>();
  private _notified = new Set<string>();
  private _changed = new Signal<this, void>(this);
  private _runEnded = new Signal<this, IRun>(this);
  private _errorReceived = new Signal<this, string>(this);
  private _statsReceived = new Signal<this, IPlatformStats>(this);
}
