// Replica states of a run, counted and said in one line ("7 Running · 2 Completed · 1 Failed").
// The one place the frontend says which statuses are active, ended and failed (mirroring the
// server's canfar_jlab statuses); a run's own state is the server's `run.state`.
import { TranslationBundle } from '@jupyterlab/translation';

import { IReplica, IRun, ISession, RunState, Status } from './api';

/** The order counts are shown in: what is still moving first, then outcomes. */
export const STATUS_ORDER: readonly Status[] = [
  'Running',
  'Pending',
  'Waiting',
  'Terminating',
  'Completed',
  'Failed',
  'TimedOut',
  'Unknown',
  'NotCreated'
];

/**
 * Will not change any more (until run again). `Unknown` too: the service lost the session,
 * and nothing will bring it back; a run with such a replica must not look active forever.
 * `Waiting` is active: the run creates it when the cap, the pilot or a retry's delay allow.
 */
export const TERMINAL_STATUSES: ReadonlySet<Status> = new Set<Status>([
  'Completed',
  'Failed',
  'TimedOut',
  'NotCreated',
  'Unknown'
]);
/** Ended without succeeding, in a way "re-run failed" re-runs. */
export const FAILED_STATUSES: ReadonlySet<Status> = new Set<Status>([
  'Failed',
  'TimedOut',
  'NotCreated'
]);

export function isTerminal(status: Status): boolean {
  return TERMINAL_STATUSES.has(status);
}

export function isFailure(status: Status): boolean {
  return FAILED_STATUSES.has(status);
}

/**
 * A replica's status now: while the run record says it is under way, the live session's
 * status when the service still lists the session (it is fresher); once the record says it
 * ended, the record's (it knows what the session cannot: TimedOut, out of memory).
 */
export function replicaStatus(
  replica: IReplica,
  sessions: ReadonlyMap<string, ISession>
): Status {
  if (isTerminal(replica.status) || replica.status === 'Waiting') {
    return replica.status;
  }
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

/**
 * A run's state from its steps, for servers that do not send one: active while any is not
 * finished, failed if any ended otherwise than Completed.
 */
export function runState(statuses: Iterable<Status>): RunState {
  let failed = false;
  let any = false;
  for (const status of statuses) {
    any = true;
    if (!isTerminal(status)) {
      return 'active';
    }
    failed = failed || status !== 'Completed';
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

/** The run's replicas, then its reduce step once it exists. */
export function runSteps(run: IRun): IReplica[] {
  return run.reduce ? [...run.replicas, run.reduce] : run.replicas;
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
    case 'Waiting':
      return trans.__('Waiting');
    case 'TimedOut':
      return trans.__('Timed out');
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
    if (replica.status === 'TimedOut') {
      return 'timed out';
    }
    return replica.oom ? 'out of memory' : null;
  }
  if (replica.oom && /out of memory/i.test(error)) {
    return error; // the server's own words: "out of memory"
  }
  const match = RUNNER_SUMMARY.exec(error);
  let text = error;
  if (match) {
    const where = match[1] ? `cell ${match[1]}` : `${match[2]} cell`;
    text = `${match[3]} (${where})`;
  }
  return replica.oom ? `${text} (out of memory)` : text;
}

/**
 * A run's state: the server's (it knows about stop, delete, retries still due and the reduce
 * step), worked out from the steps only for a server that sends none.
 */
export function effectiveRunState(
  run: IRun,
  sessions: ReadonlyMap<string, ISession>
): RunState {
  return (
    run.state ??
    runState(runSteps(run).map(step => replicaStatus(step, sessions)))
  );
}

/** Whether any replica of the run (or its reduce step) ran out of memory. */
export function anyOutOfMemory(run: IRun): boolean {
  return runSteps(run).some(step => step.oom && isFailure(step.status));
}

/** Whether a run can still change (its replicas may run). */
export function isActiveRun(state: RunState): boolean {
  return state === 'active';
}
