// Numbers, sizes, durations and times as people read them, and a run's timing from its record.
import { IReplica, IRun } from './api';

/** 100002 -> "100,002" (the browser's locale decides the separator). */
export function formatCount(n: number): string {
  return n.toLocaleString();
}

/** Seconds as "5 s", "2 min 05 s", "1 h 02 min", "3 d 4 h". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const m = Math.floor(s / 60);
  if (m < 60) {
    return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  }
  const h = Math.floor(m / 60);
  if (h < 48) {
    return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  }
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** Bytes as "512 MB" or "1.5 GB" (decimal units, as Skaha's stats). */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) {
    return `${+(bytes / 1e9).toFixed(bytes >= 1e10 ? 0 : 1)} GB`;
  }
  if (bytes >= 1e6) {
    return `${Math.round(bytes / 1e6)} MB`;
  }
  return `${Math.max(0, Math.round(bytes / 1e3))} kB`;
}

/** Gigabytes as "512 MB" or "1.5 GB". */
export function formatGigabytes(gb: number): string {
  return formatBytes(gb * 1e9);
}

/** Cores with at most two decimals: "0.25 cores", "1 core". */
export function formatCores(cores: number): string {
  const n = +cores.toFixed(cores >= 10 ? 0 : 2);
  return n === 1 ? '1 core' : `${n} cores`;
}

/** A start time: "14:03:07" today, else "Nov 29, 14:03". */
export function formatStart(iso: string, now: Date = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return '';
  }
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString(undefined, { hour12: false })
    : date.toLocaleString(undefined, {
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        hour12: false
      });
}

function time(iso: string | null | undefined): number | null {
  if (!iso) {
    return null;
  }
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

export interface IRunTiming {
  /** Epoch ms the run started (its first replica, else its creation), or null. */
  started: number | null;
  /** Epoch ms it ended, or null while it runs. */
  ended: number | null;
  /** Seconds from start to end, or to `now` while it runs; null when it never started. */
  seconds: number | null;
}

/**
 * When a run started and ended, and how long it took: the server's figures when it sends
 * them (`started`, `ended`, `duration_seconds`), else the span of its replicas' own.
 */
export function runTiming(run: IRun, now: number = Date.now()): IRunTiming {
  const replicas = run.replicas;
  const starts = replicas
    .map(r => time(r.started))
    .filter((t): t is number => t !== null);
  const ends = replicas.map(r => time(r.ended));
  const started =
    time(run.started) ??
    (starts.length ? Math.min(...starts) : null) ??
    time(run.created);
  const active = run.state === 'active';
  let ended = active ? null : time(run.ended);
  if (!active && ended === null) {
    const known = ends.filter((t): t is number => t !== null);
    ended = known.length ? Math.max(...known) : null;
  }
  let seconds: number | null = null;
  if (!active && typeof run.duration_seconds === 'number') {
    seconds = run.duration_seconds;
  } else if (started !== null) {
    const end = ended ?? (active ? now : null);
    seconds = end !== null ? Math.max(0, (end - started) / 1000) : null;
  }
  return { started, ended, seconds };
}

/** How long one replica ran (live while it runs), or null before it started. */
export function replicaSeconds(
  replica: IReplica,
  now: number = Date.now()
): number | null {
  const started = time(replica.started);
  if (started === null) {
    return null;
  }
  const ended = time(replica.ended) ?? now;
  return Math.max(0, (ended - started) / 1000);
}
