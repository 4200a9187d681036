import { nullTranslator } from '@jupyterlab/translation';

import { ILogLines } from '../logbuffer';
import { LogTabs, MERGED } from '../logtabs';
import { makeRun, offlineModel, replica, session } from './support';

const trans = nullTranslator.load('canfar_jlab');

function lines(source: ILogLines): string[] {
  return Array.from({ length: source.length }, (_, i) => source.line(i));
}

function log(sessionId: string, offset: number, text: string) {
  return {
    type: 'log' as const,
    session: sessionId,
    run: 'fit',
    replica: null,
    offset,
    next_offset: offset + new TextEncoder().encode(text).length,
    text
  };
}

describe('LogTabs', () => {
  it('has a merged tab and one per replica, and follows a re-run replica', async () => {
    const { model, send } = offlineModel();
    const first = makeRun('fit', [
      replica(1, 'Running'),
      replica(2, 'Running')
    ]);
    send({
      type: 'sessions',
      t: 1,
      sessions: [session('s1', 'Running'), session('s2', 'Running')],
      runs: [first]
    });
    const tabs = new LogTabs({ target: { run: 'fit' }, model, trans });
    expect(tabs.tabs.map(t => t.key)).toEqual([MERGED, '1', '2']);

    send(log('s1', 0, 'one\n'));
    send(log('s2', 0, 'boom\n'));
    tabs.selected = '2';
    expect(lines(tabs.visible)).toEqual(['boom']);
    expect(tabs.fileName()).toBe('fit-replica-2.log');

    // Replica 2 is re-run: its tab follows the new session; the merged tab keeps both.
    const rerun = makeRun('fit', [
      replica(1, 'Completed'),
      replica(2, 'Pending', { session_id: 's9' })
    ]);
    send({
      type: 'sessions',
      t: 2,
      sessions: [
        session('s1', 'Completed'),
        session('s2', 'Failed'),
        session('s9', 'Running')
      ],
      runs: [rerun]
    });
    send(log('s9', 0, 'fine\n'));
    expect(lines(tabs.visible)).toEqual(['fine']);
    expect(tabs.selectedTab!.status).toBe('Running');
    tabs.selected = MERGED;
    expect(lines(tabs.visible)).toEqual(['[1] one', '[2] boom', '[2] fine']);
    expect(tabs.text()).toBe('[1] one\n[2] boom\n[2] fine\n');

    tabs.query = 'FINE';
    expect(lines(tabs.visible)).toEqual(['[2] fine']);
    expect(tabs.total).toBe(3);
    tabs.dispose();
  });

  it('reads archived logs for replicas whose sessions the service no longer lists', async () => {
    const { model, send } = offlineModel();
    const run = makeRun(
      'old',
      [
        replica(1, 'Completed', {
          log: 'logs/replica-1.log',
          session_id: 'gone'
        })
      ],
      { state: 'completed' }
    );
    send({ type: 'sessions', t: 1, sessions: [], runs: [run] });
    const read: string[] = [];
    const tabs = new LogTabs({
      target: { run: 'old' },
      model,
      trans,
      loadArchive: async path => {
        read.push(path);
        return 'from the archive\n';
      }
    });
    tabs.selected = '1';
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(read).toEqual(['canfar-runs/old/logs/replica-1.log']);
    expect(lines(tabs.visible)).toEqual(['from the archive']);
    tabs.dispose();
  });

  it('shows why a replica has no log when it was never created', () => {
    const { model, send } = offlineModel();
    const run = makeRun('nc', [
      replica(1, 'NotCreated', { session_id: null, error: 'quota exceeded' })
    ]);
    send({ type: 'sessions', t: 1, sessions: [], runs: [run] });
    const tabs = new LogTabs({ target: { run: 'nc' }, model, trans });
    tabs.selected = '1';
    expect(lines(tabs.visible)).toEqual(['quota exceeded']);
    tabs.dispose();
  });

  it('downloads what the filter shows, named so', () => {
    const { model, send } = offlineModel();
    const run = makeRun('fit', [replica(1, 'Running')]);
    send({
      type: 'sessions',
      t: 1,
      sessions: [session('s1', 'Running')],
      runs: [run]
    });
    const tabs = new LogTabs({ target: { run: 'fit' }, model, trans });
    send(log('s1', 0, 'alpha\nbeta\nalphabet\n'));
    tabs.selected = '1';
    expect(tabs.text()).toBe('alpha\nbeta\nalphabet\n');
    expect(tabs.fileName()).toBe('fit-replica-1.log');
    tabs.query = 'alpha';
    expect(tabs.text()).toBe('alpha\nalphabet\n');
    expect(tabs.fileName()).toBe('fit-replica-1-filtered.log');
    tabs.dispose();
  });

  it('says why a Pending replica has no log yet', () => {
    const { model, send } = offlineModel();
    const run = makeRun('fit', [
      replica(1, 'Pending', { reason: 'queued: 2 cores held by fit-0' }),
      replica(2, 'Pending'),
      replica(3, 'Running')
    ]);
    send({ type: 'sessions', t: 1, sessions: [], runs: [run] });
    const tabs = new LogTabs({ target: { run: 'fit' }, model, trans });
    expect(tabs.tabs.map(t => t.waiting)).toEqual([
      null,
      'queued: 2 cores held by fit-0',
      'Replica 2 is Pending: its log starts when the session service runs it.',
      null
    ]);
    tabs.dispose();
  });

  it('says why a replica waits in the run, and gives the reduce step its own tab (issue 17)', () => {
    const { model, send } = offlineModel();
    const run = makeRun(
      'fit',
      [
        replica(1, 'Completed'),
        replica(2, 'Waiting', {
          session_id: null,
          reason: 'waiting in run: 2 of 2 running'
        })
      ],
      {
        reduce: {
          ...replica(0, 'Running', { session_id: 'sr' }),
          name: 'fit-reduce'
        }
      }
    );
    send({
      type: 'sessions',
      t: 1,
      sessions: [session('s1', 'Completed'), session('sr', 'Running')],
      runs: [run]
    });
    const tabs = new LogTabs({ target: { run: 'fit' }, model, trans });
    expect(tabs.tabs.map(t => [t.key, t.label, t.status])).toEqual([
      [MERGED, 'All', null],
      ['1', '1', 'Completed'],
      ['2', '2', 'Waiting'],
      ['0', 'reduce', 'Running']
    ]);
    expect(tabs.tabs[2].waiting).toBe(
      'Replica 2 is waiting in the run (waiting in run: 2 of 2 running): its log starts when the run creates it.'
    );
    expect(lines(tabs.tabs[2].lines)).toEqual([]);
    // The reduce step's log is followed like a replica's, merged under its name.
    send(log('sr', 0, 'combined 2 outputs\n'));
    expect(lines(tabs.tabs[3].lines)).toEqual(['combined 2 outputs']);
    expect(lines(tabs.visible)).toEqual(['[reduce] combined 2 outputs']);
    tabs.dispose();
  });

  it('opened before the run exists, streams as soon as the launch answer is taken (issue 13)', () => {
    const { model, live, send } = offlineModel();
    const subscribed: string[] = [];
    const subscribe = live.subscribeLogs.bind(live);
    live.subscribeLogs = (id, ...rest) => {
      subscribed.push(id);
      return subscribe(id, ...rest);
    };
    // The panel opens on the click, named after the run the form will launch.
    const tabs = new LogTabs({ target: { run: 'fit' }, model, trans });
    expect(tabs.tabs).toEqual([]);
    // The launch POST answers: its run (sessions created, not listed yet) is taken at once.
    model.updateRun(
      makeRun('fit', [replica(1, 'Pending'), replica(2, 'Pending')])
    );
    expect(subscribed).toEqual(['s1', 's2']);
    send(log('s1', 0, 'canfar-jlab: replica 1 of 2 starting\n'));
    expect(lines(tabs.visible)).toEqual([
      '[1] canfar-jlab: replica 1 of 2 starting'
    ]);
    tabs.dispose();
  });
});
