// Replica states of a run, counted and said in one line ("7 Running · 2 Completed · 1 Failed").
import { TranslationBundle } from '@jupyterlab/translation';

import { IReplica, IRun, ISession, RunState, Status } from './api';

/** The order counts are shown in: what is still moving first, then outcomes. */
export const STATUS_ORDER: readonly Status[] = [
  'Running',
  'Pending',
  'Terminating',
  'Completed',
  'Failed',
  'NotCreated',
  'Unknown'
];

const TERMINAL: ReadonlySet<Status> = new Set([
  'Completed',
  'Failed',
  'NotCreated'
]);
const FAILED: ReadonlySet<Status> = new Set(['Failed', 'NotCreated']);

export function isTerminal(status: Status): boolean {
  return TERMINAL.has(status);
}

export function isFailure(status: Status): boolean {
  return FAILED.has(status);
}

/**
 * A replica's status now: the live session's status when the service still lists the session
 * (it is fresher than the run record), else what the run recorded.
 */
export function replicaStatus(
  replica: IReplica,
  sessions: ReadonlyMap<string, ISession>
): Status {
  const session = replica.session_id
    ? sessions.get(replica.session_id)
    : undefined;
  return session ? session.status : replica.status;
}

/** How many replicas are in each status, in display order, zeros left out. */
export function countStatuses(statuses: Iterable<Status>): [Status, number][] {
  const counts = new Map<Status, number>();
  for (const status of statuses) {
    const known = STATUS_ORDER.includes(status) ? status : 'Unknown';
    counts.set(known, (counts.get(known) ?? 0) + 1);
  }
  return STATUS_ORDER.filter(s => counts.has(s)).map(s => [s, counts.get(s)!]);
}

/** A run's state from its replicas: active while any is not finished, failed if any failed. */
export function runState(statuses: Iterable<Status>): RunState {
  let failed = false;
  let any = false;
  for (const status of statuses) {
    any = true;
    if (!isTerminal(status)) {
      return 'active';
    }
    failed = failed || isFailure(status);
  }
  return !any ? 'active' : failed ? 'failed' : 'completed';
}

/** The statuses of a run's replicas, freshest source first. */
export function runStatuses(
  run: IRun,
  sessions: ReadonlyMap<string, ISession>
): Status[] {
  return run.replicas.map(r => replicaStatus(r, sessions));
}

/** A status name for people, translated. */
export function statusLabel(status: Status, trans: TranslationBundle): string {
  switch (status) {
    case 'Running':
      return trans.__('Running');
    case 'Pending':
      return trans.__('Pending');
    case 'Terminating':
      return trans.__('Terminating');
    case 'Completed':
      return trans.__('Completed');
    case 'Failed':
      return trans.__('Failed');
    case 'NotCreated':
      return trans.__('Not created');
    default:
      return trans.__('Unknown');
  }
}

/** "7 Running · 2 Completed · 1 Failed" */
export function formatCounts(
  counts: [Status, number][],
  trans: TranslationBundle
): string {
  return counts
    .map(([status, n]) => trans.__('%1 %2', n, statusLabel(status, trans)))
    .join(' · ');
}

const RUNNER_SUMMARY =
  /^canfar-jlab: stopped at (?:code cell (\d+)|the (.+?) cell) \((.*)\)(?:; the cells after it did not run)?$/;

/**
 * Why a replica failed, in one line that keeps the exception: the runner's summary
 * ("canfar-jlab: stopped at code cell 2 (ValueError: bad pixel); ...") becomes
 * "ValueError: bad pixel (cell 2)"; other reasons are kept whole.
 */
export function replicaFailure(replica: IReplica): string | null {
  const error = replica.error?.trim();
  if (!error) {
    return replica.oom ? 'likely out of memory' : null;
  }
  const match = RUNNER_SUMMARY.exec(error);
  let text = error;
  if (match) {
    const where = match[1] ? `cell ${match[1]}` : `${match[2]} cell`;
    text = `${match[3]} (${where})`;
  }
  return replica.oom ? `${text} (likely out of memory)` : text;
}

/**
 * A run's state: the server's when it sends one (it knows about stop, delete and status
 * reports), else worked out from the replicas.
 */
export function effectiveRunState(
  run: IRun,
  sessions: ReadonlyMap<string, ISession>
): RunState {
  return run.state ?? runState(runStatuses(run, sessions));
}

/** Whether a run can still change (its replicas may run). */
export function isActiveRun(state: RunState): boolean {
  return state === 'active';
}
