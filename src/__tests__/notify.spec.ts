import { Notification } from '@jupyterlab/apputils';
import { nullTranslator } from '@jupyterlab/translation';

import { IRun } from '../api';
import { runEndMessage, RunNotifier } from '../notify';
import { makeRun, replica } from './support';

const trans = nullTranslator.load('canfar_jlab');

const timed = (
  index: number,
  status: 'Completed' | 'Failed' | 'TimedOut',
  patch = {}
) =>
  replica(index, status, {
    started: '2026-11-30T10:00:00Z',
    ended: '2026-11-30T10:00:05Z',
    ...patch
  });

/** Records what JupyterLab's notification manager is asked to do. */
function fakeNotifications() {
  const shown = new Map<
    string,
    { message: string; type: string; actions: string[] }
  >();
  let next = 0;
  const api = {
    emit: (message: string, type: any, options: any) => {
      const id = `n${next++}`;
      shown.set(id, {
        message,
        type,
        actions: (options.actions ?? []).map((a: any) => a.label)
      });
      return id;
    },
    update: (args: any) => {
      if (!shown.has(args.id)) {
        return false;
      }
      shown.set(args.id, {
        message: args.message,
        type: args.type,
        actions: (args.actions ?? []).map((a: any) => a.label)
      });
      return true;
    }
  };
  return { api: api as unknown as typeof Notification, shown };
}

describe('run notifications', () => {
  it('says how a run ended without repeating itself', () => {
    const done = makeRun(
      'reduce-fits',
      [1, 2, 3, 4].map(i => timed(i, 'Completed')),
      { state: 'completed' }
    );
    expect(runEndMessage(done, trans)).toBe(
      'Run reduce-fits completed: 4 replicas in 5 s'
    );
    const failed = makeRun(
      'fail',
      [
        timed(1, 'Completed'),
        timed(2, 'Failed', {
          error:
            'canfar-jlab: stopped at code cell 2 (ValueError: bad pixel at 3,4); the cells after it did not run'
        }),
        timed(3, 'Completed')
      ],
      { state: 'failed' }
    );
    expect(runEndMessage(failed, trans)).toBe(
      'Run fail failed: 1 of 3 replicas failed in 5 s. Replica 2: ValueError: bad pixel at 3,4 (cell 2)'
    );
    // The run record keeps the runner's summary without its tail: the exception still leads.
    const recorded = makeRun(
      'boom',
      [
        timed(1, 'Failed', {
          error:
            'canfar-jlab: stopped at code cell 2 (ValueError: the pixel at (3, 4) is saturated)'
        })
      ],
      { state: 'failed' }
    );
    expect(runEndMessage(recorded, trans)).toBe(
      'Run boom failed: 1 of 1 replica failed in 5 s. Replica 1: ValueError: the pixel at (3, 4) is saturated (cell 2)'
    );
  });

  it('keeps one notification per run, updated in place, with actions for what it has', () => {
    const { api, shown } = fakeNotifications();
    const calls: string[] = [];
    const notifier = new RunNotifier(
      {
        openLogs: run => calls.push(`logs ${run.name}`),
        openFolder: run => calls.push(`folder ${run.name}`),
        openExecuted: run => calls.push(`executed ${run.name}`),
        rerunFailed: run => calls.push(`rerun ${run.name}`)
      },
      trans,
      api
    );
    const active = makeRun('fit', [
      replica(1, 'Running'),
      replica(2, 'Running')
    ]);
    const id = notifier.launched(active);
    expect(shown.get(id)!.message).toBe('Run fit launched: 2 replicas');
    const failed: IRun = {
      ...active,
      state: 'failed',
      replicas: [
        timed(1, 'Completed', {
          executed_notebook: 'replicas/1/executed.ipynb'
        }),
        timed(2, 'Failed', { error: 'boom' })
      ]
    };
    // The end, told twice (two messages, two tabs' worth): still one notification.
    expect(notifier.ended(failed)).toBe(id);
    expect(notifier.ended(failed)).toBe(id);
    expect(shown.size).toBe(1);
    expect(shown.get(id)).toEqual({
      message: 'Run fit failed: 1 of 2 replicas failed in 5 s. Replica 2: boom',
      type: 'error',
      actions: [
        'Open logs',
        'Open outputs',
        'Open executed notebook',
        'Re-run failed'
      ]
    });
    // A re-run that succeeds updates the same notification.
    const fixed: IRun = {
      ...failed,
      state: 'completed',
      replicas: [failed.replicas[0], timed(2, 'Completed')]
    };
    notifier.launched(fixed);
    expect(notifier.ended(fixed)).toBe(id);
    expect(shown.get(id)!.message).toBe('Run fit completed: 2 replicas in 5 s');
    expect(shown.get(id)!.actions).not.toContain('Re-run failed');
    // Closed by the user: the next news is a new notification.
    shown.delete(id);
    expect(notifier.ended(fixed)).not.toBe(id);
    expect(shown.size).toBe(1);
  });

  it('offers a re-run with more memory when a replica ran out of memory, and tells of the reduce step (issue 17)', () => {
    const { api, shown } = fakeNotifications();
    const calls: string[] = [];
    const notifier = new RunNotifier(
      {
        openLogs: run => calls.push(`logs ${run.name}`),
        openFolder: null,
        rerunFailed: run => calls.push(`rerun ${run.name}`),
        rerunMoreMemory: run => calls.push(`more-memory ${run.name}`)
      },
      trans,
      api
    );
    const waiting = makeRun('big', [
      replica(1, 'Running'),
      replica(2, 'Waiting', {
        session_id: null,
        reason: 'waiting for the pilot'
      })
    ]);
    const id = notifier.launched(waiting);
    expect(shown.get(id)!.message).toBe(
      'Run big launched: 2 replicas (1 waiting in the run)'
    );
    const oom = makeRun(
      'big',
      [
        timed(1, 'Completed'),
        timed(2, 'Failed', { oom: true, error: 'out of memory' })
      ],
      { state: 'failed' }
    );
    notifier.ended(oom);
    expect(shown.get(id)).toEqual({
      message:
        'Run big failed: 1 of 2 replicas failed in 5 s. Replica 2: out of memory',
      type: 'error',
      actions: ['Open logs', 'Re-run with more memory', 'Re-run failed']
    });
    // Timed out: said so, and no more memory offered.
    const late = makeRun('late', [timed(1, 'TimedOut')], { state: 'failed' });
    expect(runEndMessage(late, trans)).toBe(
      'Run late failed: 1 of 1 replica failed in 5 s. Replica 1: timed out'
    );
    // The reduce step: counted in the end message, its failure named.
    const reduced = makeRun(
      'sum',
      [timed(1, 'Completed'), timed(2, 'Completed')],
      {
        state: 'completed',
        reduce: { ...timed(0, 'Completed'), name: 'sum-reduce' }
      }
    );
    expect(runEndMessage(reduced, trans)).toBe(
      'Run sum completed: 2 replicas and the reduce step in 5 s'
    );
    const reduceFailed = {
      ...reduced,
      state: 'failed' as const,
      reduce: {
        ...timed(0, 'Failed', { error: 'KeyError: flux' }),
        name: 'sum-reduce'
      }
    };
    expect(runEndMessage(reduceFailed, trans)).toBe(
      'Run sum failed: its reduce step failed in 5 s. Reduce step: KeyError: flux'
    );
  });
});
