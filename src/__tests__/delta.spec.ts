import { applySessionsDelta } from '../live';
import { makeRun, offlineModel, replica, session } from './support';

describe('sessions_delta', () => {
  it('rebuilds the lists a whole message would carry', () => {
    const fit = makeRun('fit', [replica(1, 'Running'), replica(2, 'Pending')]);
    const old = makeRun('old', [replica(1, 'Completed')], {
      state: 'completed'
    });
    const { sessions, runs } = applySessionsDelta(
      [
        session('s1', 'Running', { cpuCoresInUse: '0.5' }),
        session('s9', 'Completed')
      ],
      [fit, old],
      {
        type: 'sessions_delta',
        t: 2,
        sessions: [
          { id: 's1', cpuCoresInUse: '0.75', ramInUse: null as any },
          session('s2', 'Running')
        ],
        removed: ['s9'],
        runs: [
          {
            name: 'fit',
            replica_changes: [
              { index: 2, status: 'Running', session_id: 's2' },
              replica(3, 'Pending')
            ]
          },
          makeRun('new', [replica(1, 'Pending')])
        ],
        runs_removed: ['old'],
        error: null
      }
    );
    expect(
      sessions.map(s => [s.id, s.cpuCoresInUse ?? null, s.ramInUse ?? null])
    ).toEqual([
      ['s1', '0.75', null],
      ['s2', null, null]
    ]);
    expect(runs.map(r => r.name)).toEqual(['new', 'fit']);
    const changed = runs[1];
    expect(
      changed.replicas.map(r => [r.index, r.status, r.session_id])
    ).toEqual([
      [1, 'Running', 's1'],
      [2, 'Running', 's2'],
      [3, 'Pending', 's3']
    ]);
    // Untouched fields are kept.
    expect(changed.folder).toBe(fit.folder);
  });

  it('feeds the model like a whole message: usage, run state and run ends', () => {
    const { model, send } = offlineModel();
    const ended: string[] = [];
    model.runEnded.connect((_, run) => ended.push(run.name));
    send({
      type: 'sessions',
      t: 1,
      sessions: [session('s1', 'Running', { cpuCoresInUse: '1' })],
      runs: [makeRun('fit', [replica(1, 'Running')])]
    });
    send({
      type: 'sessions_delta',
      t: 2,
      sessions: [{ id: 's1', status: 'Completed' }],
      removed: [],
      runs: [
        {
          name: 'fit',
          state: 'completed',
          replica_changes: [{ index: 1, status: 'Completed' }]
        }
      ],
      runs_removed: [],
      error: null
    });
    expect(model.run('fit')!.state).toBe('completed');
    expect(model.sessionsById.get('s1')!.status).toBe('Completed');
    expect(ended).toEqual(['fit']);
    expect(model.usage.get('s1')!.ended).toBe(true);
  });
});
