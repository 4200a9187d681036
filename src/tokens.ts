// The public face of canfar-jlab's frontend for other JupyterLab extensions: its model of the
// runs and sessions, behind a token (as jupyterlab-git publishes IGitExtension). Ask for it with
// `requires: [ICanfarModel]` (or `optional`); see the README's "For other extensions".
import { Token } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal } from '@lumino/signaling';

import { IReplica, IRun, ISession, RunState, Status } from './api';
import { ConnectionState } from './live';
import { ILogLines } from './logbuffer';

export type { IReplica, IRun, ISession, RunState, Status, ILogLines };

/** The log of one session as it is followed: lines, and whether (and how) it ended. */
export interface ICanfarLog extends ILogLines {
  /** The session's final status once its log ended, else null. */
  readonly ended: string | null;
  /** The whole text received so far. */
  text(): string;
}

/**
 * canfar-jlab's live model: every run (one promotion of a notebook to N replicas) and every
 * session of the user, as the server pushes them over one websocket per browser tab.
 *
 * A run's `state` is the server's ("active", "completed", "failed", "stopped", "deleted");
 * replica statuses are "Pending", "Running", "Completed", "Failed", "Terminating",
 * "Unknown", "NotCreated", "Waiting" (held back by the run) and "TimedOut".
 */
export interface ICanfarModel extends IDisposable {
  /** Runs, newest first, as of the last message. */
  readonly runs: readonly IRun[];
  /** The user's sessions on the session service (a run's replicas among them). */
  readonly sessions: readonly ISession[];
  readonly sessionsById: ReadonlyMap<string, ISession>;
  /** Whether the first list has arrived. */
  readonly loaded: boolean;
  /** The live channel: "connecting", "open", "waiting" (to reconnect) or "disposed". */
  readonly connection: ConnectionState;
  /** The session service's last complaint (it was unreachable), or null. */
  readonly upstreamError: string | null;
  /** Anything in the lists changed (runs, sessions, usage, connection). */
  readonly changed: ISignal<ICanfarModel, void>;
  /** A run ended (each attempt once, in the tab that saw it active). */
  readonly runEnded: ISignal<ICanfarModel, IRun>;
  /** The run named `name`, if known. */
  run(name: string): IRun | undefined;
  /** Sessions that belong to no run (started by the magic, the CLI or elsewhere). */
  standaloneSessions(): ISession[];
  /**
   * Follow a session's log, shared with every other viewer; call `closeLog` once done.
   * `shown` says whether it is on screen now (the server reads shown logs more often).
   */
  openLog(sessionId: string, shown?: boolean): ICanfarLog;
  closeLog(sessionId: string, shown?: boolean): void;
}

/** The token under which canfar-jlab's plugin provides its model. */
export const ICanfarModel = new Token<ICanfarModel>(
  'canfar-jlab:ICanfarModel',
  "canfar-jlab's live model of CANFAR batch runs and sessions."
);
