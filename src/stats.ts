// Platform load from GET stats, polled while someone can see it.
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IPlatformStats, ISession } from './api';
import { ApiError } from './request';
import { parseCores, parseGigabytes } from './usage';

export class PlatformStatsModel implements IDisposable {
  constructor(options: {
    fetch: () => Promise<IPlatformStats>;
    /** True while nobody can see the numbers (the sidebar is closed). */
    hidden: () => boolean;
    interval?: number;
  }) {
    this._poll = new Poll({
      auto: false,
      factory: async () => {
        try {
          this.push(await options.fetch());
        } catch (error) {
          // Skaha 1.4 answers 503 when its metrics backend is down: a state, not a fault.
          this._unavailable = error instanceof ApiError && error.status === 503;
          this._error = (error as Error).message;
          this._changed.emit();
          throw error; // let the poll back off
        }
      },
      frequency: {
        interval: options.interval ?? 15_000,
        backoff: true,
        max: 300_000
      },
      standby: () => options.hidden() || 'when-hidden',
      name: 'canfar-jlab:platform-stats'
    });
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get stats(): IPlatformStats | null {
    return this._stats;
  }

  get error(): string | null {
    return this._error;
  }

  /** Whether the platform said its metrics are unavailable (a 503, or `available: false`). */
  get unavailable(): boolean {
    return this._unavailable;
  }

  /** Figures pushed by the server (with the session list) or just fetched. */
  push(stats: IPlatformStats): void {
    if (stats.available === false) {
      this._unavailable = true;
      this._error = stats.warning ?? stats.message ?? null;
      this._stats = null;
    } else {
      this._stats = stats;
      this._error = null;
      this._unavailable = false;
    }
    this._changed.emit();
  }

  /** Start polling (or poll now when already started). */
  refresh(): void {
    if (this._started) {
      void this._poll.refresh();
    } else {
      this._started = true;
      void this._poll.start();
    }
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private _poll: Poll;
  private _started = false;
  private _stats: IPlatformStats | null = null;
  private _error: string | null = null;
  private _unavailable = false;
  private _changed = new Signal<this, void>(this);
}

function number(value: unknown): number | null {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : null;
  }
  return typeof value === 'string' ? parseCores(value) : null;
}

function gigabytes(value: unknown): number | null {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : null;
  }
  return typeof value === 'string' ? parseGigabytes(value) : null;
}

/** Platform figures, labelled as Skaha 1.4 means them. */
export interface IPlatformFigures {
  coresAllocated: number | null;
  coresCapacity: number | null;
  ramAllocatedGB: number | null;
  ramCapacityGB: number | null;
  /** The per-session ceiling (Skaha 1.4) or the largest node (older), when known. */
  sessionMax: {
    label: string;
    cores: number | null;
    ramGB: number | null;
  } | null;
}

/**
 * Skaha's stats in either shape: `requestedCPUCores`/`cpuCoresAvailable` (1.4 and before:
 * allocated / capacity) or `allocated`/`capacity` as a server may relay them.
 */
export function readPlatformStats(stats: IPlatformStats): IPlatformFigures {
  const cores = stats.cores ?? {};
  const ram = stats.ram ?? {};
  // The server's labelled figures first (issue 16), Skaha's own fields otherwise.
  const load = stats.load ?? null;
  const most = load?.session_max ?? null;
  return {
    coresAllocated:
      number(load?.cores?.allocated) ??
      number(cores.allocated ?? cores.requestedCPUCores),
    coresCapacity:
      number(load?.cores?.capacity) ??
      number(cores.capacity ?? cores.cpuCoresAvailable ?? cores.coresAvailable),
    ramAllocatedGB:
      number(load?.ram?.allocated) ??
      gigabytes(ram.allocated ?? ram.requestedRAM),
    ramCapacityGB:
      number(load?.ram?.capacity) ??
      gigabytes(ram.capacity ?? ram.ramAvailable),
    sessionMax: most
      ? {
          label: most.label,
          cores: number(most.cores),
          ramGB: number(most.ram_gb)
        }
      : null
  };
}

/** What the listed sessions use now (cores and memory in use, not their allocations). */
export function sessionsInUse(sessions: readonly ISession[]): {
  running: number;
  cores: number;
  ramGB: number;
  measured: boolean;
} {
  let running = 0;
  let cores = 0;
  let ram = 0;
  let measured = false;
  for (const session of sessions) {
    if (session.status !== 'Running') {
      continue;
    }
    running++;
    const c = parseCores(session.cpuCoresInUse);
    const r = parseGigabytes(session.ramInUse);
    measured = measured || c !== null || r !== null;
    cores += c ?? 0;
    ram += r ?? 0;
  }
  return { running, cores, ramGB: ram, measured };
}
