import { nullTranslator } from '@jupyterlab/translation';
import { fireEvent, render, screen, within } from '@testing-library/react';
import * as React from 'react';

import { IListActions, RunList, SessionList } from '../components/RunList';
import { makeRun, offlineModel, replica, session } from './support';

const trans = nullTranslator.load('canfar_jlab');

function recorder(): IListActions & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    openRunLogs: (run, index) =>
      calls.push(`logs ${run.name} ${index ?? 'all'}`),
    openSessionLogs: s => calls.push(`session-logs ${s.id}`),
    deleteRun: run => calls.push(`delete ${run.name}`),
    deleteSession: s => calls.push(`delete-session ${s.id}`),
    rerunFailed: run => calls.push(`rerun ${run.name}`),
    openFolder: run => calls.push(`folder ${run.name}`),
    stopRun: run => calls.push(`stop ${run.name}`),
    renewRun: run => calls.push(`renew ${run.name}`),
    openExecuted: (run, index) =>
      calls.push(`executed ${run.name} ${index ?? 'first'}`),
    openReplicaFiles: (run, index) => calls.push(`files ${run.name} ${index}`),
    rerunMoreMemory: run => calls.push(`more-memory ${run.name}`)
  };
}

const statuses = [
  ...Array(7).fill('Running'),
  'Completed',
  'Completed',
  'Failed'
] as const;

describe('RunList', () => {
  it('shows a run as one group with its replicas counted by status', () => {
    const { model, send } = offlineModel();
    const run = makeRun(
      'fit',
      statuses.map((s, i) => replica(i + 1, s))
    );
    send({ type: 'sessions', t: 1, sessions: [], runs: [run] });
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    const group = screen.getByRole('listitem');
    expect(
      within(group).getByText('7 Running · 2 Completed · 1 Failed')
    ).toBeTruthy();
    // Re-run is for finished runs with failures: said why it is off.
    const rerun = within(group).getByRole('button', {
      name: 'Re-run the failed replicas of fit'
    });
    expect(rerun.getAttribute('aria-disabled')).toBe('true');
    expect(rerun.getAttribute('title')).toContain('Wait for the run to end');
    fireEvent.click(rerun);
    expect(actions.calls).toEqual([]);
    fireEvent.click(
      within(group).getByRole('button', { name: 'Delete run fit' })
    );
    expect(actions.calls).toEqual(['delete fit']);
  });

  it('takes a replica status from the live session, the run state from the server', () => {
    const { model, send } = offlineModel();
    const run = makeRun('fit', [replica(1, 'Running'), replica(2, 'Running')], {
      state: 'failed'
    });
    send({
      type: 'sessions',
      t: 1,
      sessions: [session('s1', 'Completed'), session('s2', 'Failed')],
      runs: [run]
    });
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    expect(screen.getByText('1 Completed · 1 Failed')).toBeTruthy();
    const rerun = screen.getByRole('button', {
      name: 'Re-run the failed replicas of fit'
    });
    expect(rerun.getAttribute('aria-disabled')).toBeNull();
    fireEvent.click(rerun);
    expect(actions.calls).toEqual(['rerun fit']);
  });

  it('expands to replicas with CPU and memory sparklines from successive messages', () => {
    const { model, send } = offlineModel();
    const run = makeRun('fit', [replica(1, 'Running'), replica(2, 'Pending')]);
    for (const [t, cpu] of [
      [1, '0.250'],
      [2, '0.500']
    ] as const) {
      send({
        type: 'sessions',
        t,
        sessions: [
          session('s1', 'Running', { cpuCoresInUse: cpu, ramInUse: '1.50' })
        ],
        runs: [run]
      });
    }
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    const toggle = screen.getByRole('button', { name: 'fit' });
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    fireEvent.click(toggle);
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    // Units and the peak beside each line, said to screen readers too.
    expect(
      screen.getByRole('img', { name: 'CPU 0.5 cores (peak 0.5 cores)' })
    ).toBeTruthy();
    expect(
      screen.getByRole('img', { name: 'Memory 1.5 GB (peak 1.5 GB)' })
    ).toBeTruthy();
    const line = document.querySelector('.jp-canfar-sparkline-cpu polyline')!;
    expect(line.getAttribute('points')!.split(' ')).toHaveLength(2);
    fireEvent.click(
      screen.getByRole('button', { name: 'Open the log of replica 2' })
    );
    expect(actions.calls).toEqual(['logs fit 2']);
  });

  it('disables opening a run folder outside the Jupyter root, saying why', () => {
    const { model, send } = offlineModel();
    const run = makeRun('far', [replica(1, 'Completed')], {
      folder: '/scratch/far',
      folder_relative: null,
      state: 'completed'
    });
    send({ type: 'sessions', t: 1, sessions: [], runs: [run] });
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    const folder = screen.getByRole('button', {
      name: 'Open the run folder in the file browser'
    });
    expect(folder.getAttribute('aria-disabled')).toBe('true');
    expect(folder.getAttribute('title')).toBe(
      'The run folder /scratch/far is outside the Jupyter root folder'
    );
  });
});

describe('SessionList', () => {
  it('lists only the sessions that belong to no run', () => {
    const { model, send } = offlineModel();
    const run = makeRun('fit', [replica(1, 'Running')]);
    send({
      type: 'sessions',
      t: 1,
      sessions: [
        session('s1', 'Running'),
        session('old', 'Failed', { run: 'fit', replica: 1 }),
        session('cli', 'Pending', { name: 'from-the-cli' })
      ],
      runs: [run]
    });
    const actions = recorder();
    render(<SessionList model={model} actions={actions} trans={trans} />);
    const items = screen.getAllByRole('listitem');
    expect(items).toHaveLength(1);
    expect(within(items[0]).getByText('from-the-cli')).toBeTruthy();
    expect(within(items[0]).getByText('Pending')).toBeTruthy();
    fireEvent.click(
      screen.getByRole('button', { name: 'Delete session from-the-cli' })
    );
    expect(actions.calls).toEqual(['delete-session cli']);
  });

  it('says when it is still waiting and when there is nothing', () => {
    const { model, send } = offlineModel();
    const actions = recorder();
    const view = render(
      <SessionList model={model} actions={actions} trans={trans} />
    );
    expect(screen.getByText('Waiting for the session service…')).toBeTruthy();
    send({ type: 'sessions', t: 1, sessions: [], runs: [] });
    view.rerender(
      <SessionList model={model} actions={actions} trans={trans} />
    );
    expect(screen.getByText('No other sessions.')).toBeTruthy();
  });
});

describe('RunList: timing, progress, reasons and outcomes', () => {
  it('shows duration and start time, progress, a Pending reason, and stop while active', () => {
    const { model, send } = offlineModel();
    const started = new Date(Date.now() - 65_000).toISOString();
    const run = makeRun('fit', [
      replica(1, 'Running', {
        started,
        cell: { index: 4, total: 12, first_line: 'df = load(...)' }
      }),
      replica(2, 'Pending', {
        session_id: null,
        reason: 'queued: 2nd in line, 4 cores held by fit-1'
      }),
      replica(3, 'Pending', { session_id: null })
    ]);
    send({ type: 'sessions', t: 1, sessions: [], runs: [run] });
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    expect(
      document.querySelector('.jp-canfar-run-duration')!.textContent
    ).toMatch(/^1 min 0[5-9] s$/);
    expect(document.querySelector('.jp-canfar-run-start')!.textContent).toMatch(
      /^started \d\d:\d\d:\d\d$/
    );
    fireEvent.click(screen.getByRole('button', { name: 'fit' }));
    const progress = screen.getByText('cell 4 of 12');
    expect(progress.getAttribute('title')).toBe('df = load(...)');
    expect(
      screen.getByText('queued: 2nd in line, 4 cores held by fit-1')
    ).toBeTruthy();
    // Older servers send no reason: the row still says what is happening.
    expect(
      screen.getByText('Waiting for the session service to start it')
    ).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Stop run fit' }));
    fireEvent.click(
      screen.getByRole('button', {
        name: 'Renew run fit (push back its deadline)'
      })
    );
    expect(actions.calls).toEqual(['stop fit', 'renew fit']);
  });

  it('shows the whole exception line of a failure, and what the run left behind', () => {
    const { model, send } = offlineModel();
    const run = makeRun(
      'fit',
      [
        replica(1, 'Completed', {
          executed_notebook: 'replicas/1/executed.ipynb',
          files: ['replicas/1/result.fits', 'replicas/1/plots/a.png']
        }),
        replica(2, 'Failed', {
          error:
            'canfar-jlab: stopped at code cell 2 (ValueError: the pixel at (3, 4) of frame 17 is saturated beyond repair); the cells after it did not run'
        })
      ],
      { state: 'failed' }
    );
    send({ type: 'sessions', t: 1, sessions: [], runs: [run] });
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    expect(document.querySelector('.jp-canfar-run-error')!.textContent).toBe(
      'Replica 2: ValueError: the pixel at (3, 4) of frame 17 is saturated beyond repair (cell 2)'
    );
    expect(
      screen
        .getByRole('button', { name: 'Stop run fit' })
        .getAttribute('aria-disabled')
    ).toBe('true');
    fireEvent.click(
      screen.getByRole('button', {
        name: 'Open the executed notebook of run fit'
      })
    );
    fireEvent.click(screen.getByRole('button', { name: 'fit' }));
    fireEvent.click(
      screen.getByRole('button', { name: 'Open the 2 new files of replica 1' })
    );
    fireEvent.click(
      screen.getByRole('button', {
        name: 'Open the executed notebook of replica 1'
      })
    );
    expect(actions.calls).toEqual([
      'executed fit first',
      'files fit 1',
      'executed fit 1'
    ]);
  });

  it('keeps sparklines after a replica ends, with its peak, and hints at the next size', () => {
    const { model, send } = offlineModel();
    const running = makeRun('fit', [replica(1, 'Running')], {
      spec: {
        image: 'img',
        cores: 4,
        ram: 8,
        gpus: null,
        env: {},
        replicas: 1
      }
    });
    for (const [t, cpu, ram] of [
      [1, '0.5', '0.2G'],
      [2, '0.9', '0.6G']
    ] as const) {
      send({
        type: 'sessions',
        t,
        sessions: [
          session('s1', 'Running', { cpuCoresInUse: cpu, ramInUse: ram })
        ],
        runs: [running]
      });
    }
    const done = {
      ...running,
      state: 'completed' as const,
      replicas: [{ ...running.replicas[0], status: 'Completed' as const }]
    };
    send({ type: 'sessions', t: 3, sessions: [], runs: [done] });
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    fireEvent.click(screen.getByRole('button', { name: 'fit' }));
    expect(
      screen.getByRole('img', { name: 'CPU peak 0.9 cores' })
    ).toBeTruthy();
    expect(
      screen.getByRole('img', { name: 'Memory peak 600 MB' })
    ).toBeTruthy();
    expect(document.querySelector('.jp-canfar-hint')!.textContent).toBe(
      'Memory peaked at 600 MB of the 8 GB asked for: 1 GB would do. CPU peaked at 0.9 cores of 4 cores: 1 core would do.'
    );
  });

  it('shows Waiting with its reason, timed out, out of memory and attempts per replica (issue 17)', () => {
    const { model, send } = offlineModel();
    const run = makeRun(
      'big',
      [
        replica(1, 'TimedOut', { error: null }),
        replica(2, 'Failed', {
          oom: true,
          error: 'out of memory',
          attempt_count: 3,
          attempts: [
            {
              session_id: 'a',
              status: 'Failed',
              error: 'x',
              log: null,
              why: 'retry'
            },
            {
              session_id: 'b',
              status: 'Failed',
              error: 'out of memory',
              log: null,
              why: 'more-memory',
              oom: true
            }
          ]
        }),
        replica(3, 'Waiting', {
          session_id: null,
          reason: 'waiting in run: 2 of 2 running'
        })
      ],
      { state: 'active' }
    );
    send({ type: 'sessions', t: 1, sessions: [], runs: [run] });
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    expect(screen.getByText('1 Waiting · 1 Failed · 1 Timed out')).toBeTruthy();
    fireEvent.click(
      document.querySelector('.jp-canfar-run-toggle') as HTMLElement
    );
    const rows = screen.getAllByRole('listitem').slice(1);
    expect(rows.map(r => r.getAttribute('data-status'))).toEqual([
      'TimedOut',
      'Failed',
      'Waiting'
    ]);
    expect(within(rows[0]).getByText('timed out')).toBeTruthy();
    expect(rows[1].getAttribute('data-oom')).toBe('true');
    expect(within(rows[1]).getAllByText('out of memory')).toHaveLength(2);
    const attempts = within(rows[1]).getByText('3 attempts');
    expect(attempts.getAttribute('title')).toBe(
      'Attempt 1: Failed, then retried\nAttempt 2: Failed (out of memory), then re-run with more memory'
    );
    expect(
      within(rows[2]).getByText('waiting in run: 2 of 2 running')
    ).toBeTruthy();
    // More memory: offered (the run is active, so not yet).
    const more = screen.getByRole('button', {
      name: 'Re-run with more memory'
    });
    expect(more.getAttribute('aria-disabled')).toBe('true');
  });

  it('offers a re-run with more memory once the run ended, and lists the reduce step under the replicas', () => {
    const { model, send } = offlineModel();
    const ended = makeRun(
      'sum',
      [
        replica(1, 'Completed'),
        replica(2, 'Failed', { oom: true, error: 'out of memory' })
      ],
      { state: 'failed', spec: { ...makeRun('x', []).spec, reduce: 'cells' } }
    );
    const reduced = makeRun('red', [replica(1, 'Completed')], {
      state: 'completed',
      reduce: {
        ...replica(0, 'Completed', {
          executed_notebook: 'reduce/executed.ipynb'
        }),
        name: 'red-reduce'
      }
    });
    send({ type: 'sessions', t: 1, sessions: [], runs: [ended, reduced] });
    const actions = recorder();
    render(<RunList model={model} actions={actions} trans={trans} />);
    const [sum, red] = screen
      .getAllByRole('listitem')
      .filter(li => li.classList.contains('jp-canfar-run'));
    fireEvent.click(
      within(sum).getByRole('button', { name: 'Re-run with more memory' })
    );
    expect(actions.calls).toEqual(['more-memory sum']);
    expect(within(sum).getByText('Replica 2: out of memory')).toBeTruthy();
    // Its reduce step is still to come: a row says when it runs.
    fireEvent.click(sum.querySelector('.jp-canfar-run-toggle') as HTMLElement);
    const pending = sum.querySelector('.jp-canfar-reduce')!;
    expect(pending.textContent).toContain(
      'the cells tagged reduce run once every replica has completed'
    );
    // A run whose reduce step ran: in the summary, and as the last row with its notebook.
    expect(
      within(red).getByText('1 Completed · reduce Completed')
    ).toBeTruthy();
    expect(
      within(red).queryByRole('button', { name: 'Re-run with more memory' })
    ).toBeNull();
    fireEvent.click(red.querySelector('.jp-canfar-run-toggle') as HTMLElement);
    const row = red.querySelector('.jp-canfar-reduce') as HTMLElement;
    expect(row.getAttribute('data-replica')).toBe('0');
    fireEvent.click(
      within(row).getByRole('button', {
        name: 'Open the executed notebook of the reduce step'
      })
    );
    fireEvent.click(
      within(row).getByRole('button', {
        name: 'Open the log of the reduce step'
      })
    );
    expect(actions.calls.slice(1)).toEqual(['executed red 0', 'logs red 0']);
  });
});
