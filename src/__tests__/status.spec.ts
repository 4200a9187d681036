import { nullTranslator } from '@jupyterlab/translation';

import { IReplica, ISession, Status } from '../api';
import {
  anyOutOfMemory,
  countStatuses,
  effectiveRunState,
  formatCounts,
  isFailure,
  isTerminal,
  replicaFailure,
  replicaStatus,
  runState,
  statusLabel
} from '../status';
import { makeRun } from './support';

const trans = nullTranslator.load('canfar_jlab');

function replica(
  index: number,
  status: Status,
  session_id: string | null = null
): IReplica {
  return {
    index,
    name: `r-${index}`,
    session_id,
    status,
    error: null,
    started: null,
    ended: null,
    log: null
  };
}

describe('replica status aggregation', () => {
  it('counts replicas per status in display order, zeros left out', () => {
    const statuses: Status[] = [
      'Failed',
      ...Array<Status>(7).fill('Running'),
      'Completed',
      'Completed'
    ];
    expect(countStatuses(statuses)).toEqual([
      ['Running', 7],
      ['Completed', 2],
      ['Failed', 1]
    ]);
    expect(formatCounts(countStatuses(statuses), trans)).toBe(
      '7 Running · 2 Completed · 1 Failed'
    );
  });

  it('names replicas that never got a session and folds unknown words into Unknown', () => {
    const counts = countStatuses(['NotCreated', 'Weird' as Status, 'Pending']);
    expect(formatCounts(counts, trans)).toBe(
      '1 Pending · 1 Unknown · 1 Not created'
    );
  });

  it('derives the run state: active while any replica moves, failed if any failed', () => {
    expect(runState(['Completed', 'Running'])).toBe('active');
    expect(runState(['Completed', 'Pending'])).toBe('active');
    expect(runState(['Completed', 'Terminating'])).toBe('active');
    expect(runState(['Completed', 'Completed'])).toBe('completed');
    expect(runState(['Completed', 'Failed'])).toBe('failed');
    expect(runState(['Completed', 'NotCreated'])).toBe('failed');
    expect(runState([])).toBe('active');
  });

  it("prefers the live session's status to the run record's", () => {
    const sessions = new Map<string, ISession>([
      ['abc', { id: 'abc', status: 'Completed' }]
    ]);
    expect(replicaStatus(replica(1, 'Running', 'abc'), sessions)).toBe(
      'Completed'
    );
    // A session the service no longer lists: the run record (archived outcome) stands.
    expect(replicaStatus(replica(2, 'Failed', 'gone'), sessions)).toBe(
      'Failed'
    );
    expect(replicaStatus(replica(3, 'NotCreated'), sessions)).toBe(
      'NotCreated'
    );
  });

  it('ends on Unknown and TimedOut, keeps Waiting active (issues 17, 18)', () => {
    for (const status of ['Unknown', 'TimedOut'] as Status[]) {
      expect(isTerminal(status)).toBe(true);
    }
    expect(isTerminal('Waiting')).toBe(false);
    expect(isFailure('TimedOut')).toBe(true);
    // A replica whose session vanished does not keep the run active forever.
    expect(runState(['Completed', 'Unknown'])).toBe('failed');
    expect(runState(['Completed', 'TimedOut'])).toBe('failed');
    expect(runState(['Completed', 'Waiting'])).toBe('active');
    expect(
      formatCounts(
        countStatuses(['Waiting', 'Running', 'TimedOut', 'Waiting']),
        trans
      )
    ).toBe('1 Running · 2 Waiting · 1 Timed out');
    expect(statusLabel('TimedOut', trans)).toBe('Timed out');
  });

  it("shows the server's run state, not one worked out from the replicas", () => {
    const sessions = new Map<string, ISession>();
    // Every replica Completed, but the reduce step still to come: the server says active.
    const run = makeRun(
      'fit',
      [replica(1, 'Completed'), replica(2, 'Completed')],
      {
        state: 'active'
      }
    );
    expect(effectiveRunState(run, sessions)).toBe('active');
    expect(effectiveRunState({ ...run, state: 'stopped' }, sessions)).toBe(
      'stopped'
    );
    // An old server without `state`: the steps (reduce included) decide.
    const old = {
      ...run,
      state: undefined as any,
      reduce: { ...replica(0, 'Running'), name: 'fit-reduce' }
    };
    expect(effectiveRunState(old, sessions)).toBe('active');
  });

  it('keeps what the run record knows once a replica ended: timed out, out of memory', () => {
    const sessions = new Map<string, ISession>([
      ['t', { id: 't', status: 'Failed' }],
      ['w', { id: 'w', status: 'Running' }]
    ]);
    const timedOut = replica(1, 'TimedOut', 't');
    expect(replicaStatus(timedOut, sessions)).toBe('TimedOut');
    expect(replicaFailure(timedOut)).toBe('timed out');
    const oom = { ...replica(2, 'Failed', 't'), oom: true };
    expect(replicaFailure(oom)).toBe('out of memory');
    expect(
      replicaFailure({ ...oom, error: 'out of memory (peak 1.9 GB of 2 GB)' })
    ).toBe('out of memory (peak 1.9 GB of 2 GB)');
    expect(anyOutOfMemory(makeRun('m', [replica(1, 'Completed'), oom]))).toBe(
      true
    );
    expect(anyOutOfMemory(makeRun('m', [replica(1, 'Failed')]))).toBe(false);
  });
});
