import { nullTranslator } from '@jupyterlab/translation';

import { IReplica, ISession, Status } from '../api';
import {
  countStatuses,
  formatCounts,
  replicaStatus,
  runState
} from '../status';

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
      '1 Pending · 1 Not created · 1 Unknown'
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
});
