import {
  formatBytes,
  formatCores,
  formatCount,
  formatDuration,
  formatStart,
  replicaSeconds,
  runTiming
} from '../format';
import { makeRun, replica } from './support';

describe('format', () => {
  it('says numbers, sizes and durations as people read them', () => {
    expect(formatCount(100002)).toBe('100,002');
    expect(formatDuration(4.6)).toBe('5 s');
    expect(formatDuration(125)).toBe('2 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe('3 d 4 h');
    expect(formatBytes(512e6)).toBe('512 MB');
    expect(formatBytes(1.52e9)).toBe('1.5 GB');
    expect(formatCores(1)).toBe('1 core');
    expect(formatCores(0.257)).toBe('0.26 cores');
  });

  it('gives a start time of today as a clock time, of another day with its date', () => {
    const now = new Date('2026-11-30T15:00:00');
    expect(formatStart('2026-11-30T14:03:07', now)).toMatch(/14:03:07/);
    expect(formatStart('2026-11-29T14:03:07', now)).toMatch(/29/);
    expect(formatStart('not a date', now)).toBe('');
  });

  it("takes a run's duration from the server when sent, else from its replicas", () => {
    const ended = makeRun(
      'fit',
      [
        replica(1, 'Completed', {
          started: '2026-11-30T10:00:00Z',
          ended: '2026-11-30T10:00:04Z'
        }),
        replica(2, 'Completed', {
          started: '2026-11-30T10:00:01Z',
          ended: '2026-11-30T10:00:05Z'
        })
      ],
      { state: 'completed' }
    );
    expect(runTiming(ended).seconds).toBe(5);
    expect(runTiming({ ...ended, duration_seconds: 4.2 }).seconds).toBe(4.2);
    // Live while it runs: measured to now.
    const running = makeRun(
      'fit',
      [replica(1, 'Running', { started: '2026-11-30T10:00:00Z' })],
      { state: 'active' }
    );
    const now = Date.parse('2026-11-30T10:01:00Z');
    expect(runTiming(running, now)).toEqual({
      started: Date.parse('2026-11-30T10:00:00Z'),
      ended: null,
      seconds: 60
    });
    expect(replicaSeconds(running.replicas[0], now)).toBe(60);
    expect(replicaSeconds(replica(3, 'Pending'), now)).toBeNull();
  });
});
