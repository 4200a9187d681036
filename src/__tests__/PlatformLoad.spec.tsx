import { nullTranslator } from '@jupyterlab/translation';
import { render, screen } from '@testing-library/react';
import * as React from 'react';

import { PlatformLoad } from '../components/PlatformLoad';
import { ApiError } from '../request';
import { PlatformStatsModel, readPlatformStats, sessionsInUse } from '../stats';
import { session } from './support';

const trans = nullTranslator.load('canfar_jlab');

describe('platform load', () => {
  it("reads Skaha's stats in both shapes as allocated and capacity", () => {
    expect(
      readPlatformStats({
        cores: { requestedCPUCores: 377, cpuCoresAvailable: 960 },
        ram: { requestedRAM: '1234.5G', ramAvailable: '4500G' }
      })
    ).toEqual({
      coresAllocated: 377,
      coresCapacity: 960,
      ramAllocatedGB: 1234.5,
      ramCapacityGB: 4500,
      sessionMax: null
    });
    // The server's labelled figures (issue 16) win over Skaha's raw names.
    expect(
      readPlatformStats({
        available: true,
        cores: { requestedCPUCores: 1, cpuCoresAvailable: 2 },
        load: {
          cores: { capacity: 960, allocated: 377, unit: 'cores' },
          ram: { capacity: 4500, allocated: 1234.5, unit: 'GB' },
          session_max: { label: 'per-session limit', cores: 8, ram_gb: 34.36 }
        }
      })
    ).toEqual({
      coresAllocated: 377,
      coresCapacity: 960,
      ramAllocatedGB: 1234.5,
      ramCapacityGB: 4500,
      sessionMax: { label: 'per-session limit', cores: 8, ramGB: 34.36 }
    });
    expect(
      readPlatformStats({
        cores: { allocated: '2', capacity: 8 },
        ram: { allocated: 4, capacity: '16Gi' }
      })
    ).toEqual({
      coresAllocated: 2,
      coresCapacity: 8,
      ramAllocatedGB: 4,
      ramCapacityGB: expect.closeTo(17.18, 2),
      sessionMax: null
    });
  });

  it('sums what running sessions use, not what they were allocated', () => {
    const sessions = [
      session('a', 'Running', {
        cpuCoresInUse: '0.75',
        ramInUse: '512M',
        requestedRAM: '8G'
      }),
      session('b', 'Running', { cpuCoresInUse: '1.25', ramInUse: '1.5G' }),
      session('c', 'Completed', { cpuCoresInUse: '9', ramInUse: '9G' })
    ];
    expect(sessionsInUse(sessions)).toEqual({
      running: 2,
      cores: 2,
      ramGB: expect.closeTo(2.012, 3),
      measured: true
    });
    render(
      <PlatformLoad
        stats={{
          cores: { requestedCPUCores: 377, cpuCoresAvailable: 960 },
          ram: { requestedRAM: '1234.5G', ramAvailable: '4500G' }
        }}
        error={null}
        sessions={sessions}
        trans={trans}
      />
    );
    expect(
      screen.getByText('In use by your 2 running sessions: 2 cores · 2 GB')
    ).toBeTruthy();
    expect(
      screen.getByText('Platform cores: 377 allocated of 960 capacity')
    ).toBeTruthy();
    expect(
      screen.getByText(
        'Platform memory: 1,234.5 allocated of 4,500 GB capacity'
      )
    ).toBeTruthy();
  });

  it('says "platform metrics unavailable" on a 503 and keeps the sessions figures', async () => {
    const stats = new PlatformStatsModel({
      fetch: () =>
        Promise.reject(new ApiError('metrics backend unavailable', 503)),
      hidden: () => false
    });
    const changed = new Promise<void>(resolve =>
      stats.changed.connect(() => resolve())
    );
    stats.refresh();
    await changed;
    expect(stats.unavailable).toBe(true);
    render(
      <PlatformLoad
        stats={stats.stats}
        error={stats.error}
        unavailable={stats.unavailable}
        sessions={[
          session('a', 'Running', { cpuCoresInUse: '1', ramInUse: '1G' })
        ]}
        trans={trans}
      />
    );
    expect(screen.getByText('Platform metrics unavailable')).toBeTruthy();
    expect(screen.getByText(/In use by your 1 running session/)).toBeTruthy();
    expect(screen.queryByRole('meter')).toBeNull();
    stats.dispose();
  });

  it('takes stats pushed with the session list', () => {
    const stats = new PlatformStatsModel({
      fetch: () => new Promise(() => undefined),
      hidden: () => false
    });
    stats.push({
      available: false,
      warning: 'platform metrics unavailable (metrics down)',
      load: null
    });
    expect(stats.unavailable).toBe(true);
    expect(stats.error).toBe('platform metrics unavailable (metrics down)');
    stats.push({ cores: { requestedCPUCores: 1, cpuCoresAvailable: 2 } });
    expect(stats.unavailable).toBe(false);
    expect(stats.stats?.cores?.cpuCoresAvailable).toBe(2);
    stats.dispose();
  });
});
