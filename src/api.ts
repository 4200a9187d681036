// Types and calls for the canfar-jlab REST routes (docs/rest-api.md is the contract).
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, requestAPI } from './request';

/**
 * A replica or session status, as the server reports it. Sessions have the first six;
 * replicas also `NotCreated` (its create failed), `Waiting` (held back by its run: the
 * max-running cap, the pilot, a retry's delay) and `TimedOut` (ended by the run's timeout).
 */
export type Status =
  | 'Pending'
  | 'Running'
  | 'Completed'
  | 'Failed'
  | 'Terminating'
  | 'Unknown'
  | 'NotCreated'
  | 'Waiting'
  | 'TimedOut';

/** Skaha's session JSON, plus the run it belongs to when the server knows it. */
export interface ISession {
  id: string;
  name?: string;
  status: Status;
  type?: string;
  image?: string;
  startTime?: string;
  expiryTime?: string;
  cpuCoresInUse?: string;
  ramInUse?: string;
  requestedCPUCores?: string;
  requestedRAM?: string;
  requestedGPUCores?: string;
  isFixedResources?: boolean;
  run?: string;
  replica?: number;
}

/** An earlier session of a replica that was run again, and why it was. */
export interface IReplicaAttempt {
  session_id: string | null;
  status: Status;
  error: string | null;
  log: string | null;
  /** "rerun" (by the user), "retry" (automatic), "more-memory" (issue 17). */
  why?: string | null;
  oom?: boolean;
  cores?: number | null;
  ram?: number | null;
}

/**
 * One of a run's N sessions. `index` is the replica's REPLICA_ID (1-based); the run's
 * reduce step (`run.reduce`) has index 0.
 */
export interface IReplica {
  index: number;
  name: string;
  session_id: string | null;
  status: Status;
  error: string | null;
  started: string | null;
  ended: string | null;
  /** The archived log, relative to the run folder, once the replica has ended. */
  log: string | null;
  /** Earlier attempts of this replica (before re-runs and retries), oldest first. */
  attempts?: IReplicaAttempt[];
  // Fields below come from the replica's own status report (newer servers; may be absent).
  exit_code?: number | null;
  peak_rss_bytes?: number | null;
  cpu_seconds?: number | null;
  /** The code cell it is in: 1-based index of total, with its first line. */
  cell?: { index: number; total: number; first_line?: string } | null;
  attempt_count?: number;
  /** The executed notebook, relative to the run folder. */
  executed_notebook?: string | null;
  /** New files the replica made, relative to the run folder. */
  files?: string[];
  /** This replica's parameter values (sweeps). */
  parameters?: Record<string, unknown> | null;
  /** Likely or known out of memory. */
  oom?: boolean;
  /** Why it is Pending (the session's events, the local engine's queue) or Waiting. */
  reason?: string | null;
  /** Its own cores and RAM (GB) when not the run's: a pilot's sizing, more memory. */
  cores?: number | null;
  ram?: number | null;
  /** When a Waiting replica's retry is due. */
  retry_at?: string | null;
}

export type RunState =
  'active' | 'completed' | 'failed' | 'stopped' | 'deleted';

/** One promotion of a notebook to N replicas. */
export interface IRun {
  name: string;
  notebook: string;
  created: string;
  folder: string;
  /** The run folder relative to the server root, or null when it lies outside it. */
  folder_relative: string | null;
  spec: {
    image: string;
    cores: number | null;
    ram: number | null;
    gpus: number | null;
    env: Record<string, string>;
    replicas: number;
    parameters?: Record<string, unknown> | null;
    sweep?: Record<string, unknown>[] | null;
    // Issue 17: how the run conducts its replicas.
    retries?: number;
    timeout_seconds?: number | null;
    max_running?: number | null;
    pilot?: boolean;
    /** null, "cells" (the cells tagged reduce) or the reduce notebook's file name. */
    reduce?: string | null;
  };
  replicas: IReplica[];
  /** The reduce step (index 0, named RUN-reduce) once created. */
  reduce?: IReplica | null;
  /** What the pilot measured and sized the rest with. */
  sizing?: {
    cores?: number | null;
    ram?: number | null;
    peak_rss_bytes?: number | null;
    cpu_seconds?: number | null;
    wall_seconds?: number | null;
  } | null;
  counts: Partial<Record<Status, number>>;
  state: RunState;
  started?: string | null;
  ended?: string | null;
  duration_seconds?: number | null;
}

/** The body of POST runs and POST runs/preview. */
export interface ILaunchRequest {
  notebook: string;
  replicas: number;
  name?: string;
  image?: string;
  cores?: number;
  ram?: number;
  gpus?: number;
  env?: Record<string, string>;
  parameters?: Record<string, unknown>;
  /** Whether list values in `parameters` are sweeps (one replica per row). */
  sweep?: boolean;
  /** A login of ~/.canfar/config.yaml (`GET config` lists them as `sites`; issue 16). */
  site?: string;
  /** Names of the Jupyter server's environment variables replicas get (issue 15). */
  secret_env?: string[];
  // Issue 17: re-create a Failed replica up to N times; end one running longer; create at
  // most K at once; replica 1 alone first, sizing the rest; a notebook run once after all.
  retries?: number;
  timeout_seconds?: number;
  max_running?: number;
  pilot?: boolean;
  reduce_notebook?: string;
}

/** Something in the notebook that cannot work in an unattended replica. */
export interface IExportProblem {
  cell: number;
  line: number;
  message: string;
  cell_id?: string | null;
}

/** What POST runs/preview says a launch would do. */
export interface IPreview {
  name?: string;
  folder?: string;
  image?: string;
  problems: IExportProblem[];
  replicas: {
    index: number;
    name: string;
    env: Record<string, string>;
    /** Not created at launch, and why ("waiting for the pilot"; issue 17). */
    waiting?: string | null;
  }[];
  argv: string[];
  // Issue 17: how the run would be conducted, as the server understood the request.
  retries?: number;
  timeout_seconds?: number | null;
  max_running?: number | null;
  pilot?: boolean;
  reduce?: string | null;
  /** Code cells tagged `reduce` (run once after every replica succeeded), when said. */
  reduce_cells?: number[] | null;
}

export interface IImage {
  id: string;
  types: string[];
  digest?: string | null;
}

export interface IImages {
  images: IImage[];
  note: string;
}

/** One resource of Skaha's /context: what a session may ask for. */
export interface IResourceOptions {
  default?: number | null;
  defaultRequest?: number | null;
  defaultLimit?: number | null;
  options: number[];
}

export interface IContext {
  cores: IResourceOptions;
  memoryGB: IResourceOptions;
  gpus: IResourceOptions;
  [key: string]: unknown;
}

/**
 * Skaha's platform stats (view=stats), as the server relays them. Skaha 1.4 and older both
 * name the figures `requestedCPUCores`/`cpuCoresAvailable` (allocated / capacity); a server
 * may also say `allocated`/`capacity` outright. Read with `readPlatformStats`.
 */
export interface IPlatformStats {
  cores?: {
    requestedCPUCores?: number | string | null;
    cpuCoresAvailable?: number | string | null;
    allocated?: number | string | null;
    capacity?: number | string | null;
    coresAvailable?: number | string | null;
  } | null;
  ram?: {
    requestedRAM?: string | number | null;
    ramAvailable?: string | number | null;
    allocated?: string | number | null;
    capacity?: string | number | null;
  } | null;
  gpu?: { requestedGPU?: number | null; gpuAvailable?: number | null } | null;
  /** False (with `warning`) when Skaha's metrics are down: it answered 503 (issue 16). */
  available?: boolean;
  warning?: string | null;
  message?: string;
  /** The server's labelled figures (issue 16), null when unavailable. */
  load?: {
    cores?: ILoadFigures | null;
    ram?: ILoadFigures | null;
    gpus?: ILoadFigures | null;
    session_max?: {
      label: string;
      cores?: number | null;
      ram_gb?: number | null;
    } | null;
  } | null;
}

/** One resource of the platform as the server labels it: capacity and allocation. */
export interface ILoadFigures {
  capacity?: number | null;
  allocated?: number | null;
  free?: number | null;
  unit?: string;
}

const json = (method: string, body?: unknown): RequestInit => ({
  method,
  body: body === undefined ? undefined : JSON.stringify(body),
  headers:
    body === undefined ? undefined : { 'Content-Type': 'application/json' }
});

const segment = (value: string): string => encodeURIComponent(value);

/** The REST calls the UI makes, bound to one server. */
export class CanfarAPI {
  constructor(readonly serverSettings: ServerConnection.ISettings) {}

  launch(request: ILaunchRequest): Promise<IRun> {
    return requestAPI('runs', this.serverSettings, json('POST', request));
  }

  preview(request: ILaunchRequest): Promise<IPreview> {
    return requestAPI(
      'runs/preview',
      this.serverSettings,
      json('POST', request)
    );
  }

  deleteRun(name: string): Promise<{ deleted: string[] }> {
    return requestAPI(
      `runs/${segment(name)}`,
      this.serverSettings,
      json('DELETE')
    );
  }

  /**
   * Re-run the failed replicas from the launch snapshot or the current notebook. Servers
   * before the run record (issue 11) take only `{failed_only: true}` and re-run the snapshot:
   * a snapshot re-run falls back to that body when the new one is refused as unknown.
   */
  async rerunFailed(
    name: string,
    source: 'snapshot' | 'notebook' = 'snapshot'
  ): Promise<IRun> {
    const route = `runs/${segment(name)}/rerun`;
    try {
      return await requestAPI(
        route,
        this.serverSettings,
        json('POST', { failed: true, source })
      );
    } catch (error) {
      const unknownField =
        error instanceof ApiError &&
        error.status === 400 &&
        /extra|not permitted|unexpected/i.test(error.message);
      if (!unknownField) {
        throw error;
      }
      if (source !== 'snapshot') {
        throw new ApiError(
          'this server re-runs from the launch snapshot only; update canfar-jlab to re-run the current notebook',
          400
        );
      }
      return requestAPI(
        route,
        this.serverSettings,
        json('POST', { failed_only: true })
      );
    }
  }

  /**
   * Re-run the replicas that ran out of memory as fixed sessions with twice their peak
   * (issue 17); 409 with the reason when that is more than the service offers.
   */
  rerunMoreMemory(name: string): Promise<IRun> {
    return requestAPI(
      `runs/${segment(name)}/rerun`,
      this.serverSettings,
      json('POST', { more_memory: true })
    );
  }

  /** Push back the deadline of the run's live replicas (issue 16); `hours` left wanted. */
  renewRun(
    name: string,
    hours?: number
  ): Promise<{
    run: string;
    hours?: number;
    replicas: {
      index: number;
      outcome: string;
      expiry?: string | null;
      note?: string | null;
    }[];
  }> {
    return requestAPI(
      `runs/${segment(name)}/renew`,
      this.serverSettings,
      json('POST', hours === undefined ? {} : { hours })
    );
  }

  /** End the run's replicas, keeping its record and logs (newer servers). */
  stopRun(name: string): Promise<IRun> {
    return requestAPI(
      `runs/${segment(name)}/stop`,
      this.serverSettings,
      json('POST', {})
    );
  }

  deleteSession(id: string): Promise<{ deleted: string[] }> {
    return requestAPI(
      `sessions/${segment(id)}`,
      this.serverSettings,
      json('DELETE')
    );
  }

  images(): Promise<IImages> {
    return requestAPI('images', this.serverSettings);
  }

  context(): Promise<IContext> {
    return requestAPI('context', this.serverSettings);
  }

  stats(): Promise<IPlatformStats> {
    return requestAPI('stats', this.serverSettings);
  }
}
