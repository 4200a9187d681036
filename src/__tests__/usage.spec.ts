import { parseCores, parseGigabytes, RingBuffer, UsageHistory } from '../usage';

describe('usage samples', () => {
  it('keeps only the newest samples in a ring buffer, oldest first', () => {
    const ring = new RingBuffer(3);
    expect(ring.toArray()).toEqual([]);
    expect(ring.last()).toBeUndefined();
    [1, 2, 3, 4, 5].forEach(v => ring.push(v));
    expect(ring.toArray()).toEqual([3, 4, 5]);
    expect(ring.length).toBe(3);
    expect(ring.last()).toBe(5);
  });

  it("reads Skaha's CPU and memory strings", () => {
    expect(parseCores('0.250')).toBe(0.25);
    expect(parseCores('')).toBeNull();
    expect(parseCores(undefined)).toBeNull();
    expect(parseCores('lots')).toBeNull();
    expect(parseGigabytes('8.59')).toBe(8.59);
    expect(parseGigabytes('1234.5G')).toBe(1234.5);
    expect(parseGigabytes('512M')).toBeCloseTo(0.512);
    expect(parseGigabytes('8Gi')).toBeCloseTo(8.59, 2);
    expect(parseGigabytes('512Mi')).toBeCloseTo(0.537, 3);
    expect(parseGigabytes('<none>')).toBeNull();
  });

  it('samples each snapshot once and keeps the history of sessions that end', () => {
    const history = new UsageHistory(4);
    history.record(1, [
      { id: 'a', status: 'Running', cpuCoresInUse: '0.5', ramInUse: '1.00' },
      { id: 'b', status: 'Pending' }
    ]);
    // The same snapshot again (sent to a new subscriber) is not a new sample.
    history.record(1, [
      { id: 'a', status: 'Running', cpuCoresInUse: '0.5', ramInUse: '1.00' }
    ]);
    history.record(2, [
      { id: 'a', status: 'Running', cpuCoresInUse: '1.5', ramInUse: '2.00' }
    ]);
    expect(history.get('a')!.cpu.toArray()).toEqual([0.5, 1.5]);
    expect(history.get('a')!.ram.toArray()).toEqual([1, 2]);
    expect(history.get('b')).toBeUndefined();
    history.record(3, []);
    // Gone from the list: kept, marked ended, with its peaks.
    expect(history.get('a')!.ended).toBe(true);
    expect(history.get('a')!.peakCpu).toBe(1.5);
    expect(history.get('a')!.peakRam).toBe(2);
  });

  it('keeps the peak after the window drops it, and no samples after the end', () => {
    const history = new UsageHistory(2);
    const running = (cpu: string) => [
      { id: 'a', status: 'Running' as const, cpuCoresInUse: cpu, ramInUse: '1' }
    ];
    history.record(1, running('3'));
    history.record(2, running('1'));
    history.record(3, running('1'));
    expect(history.get('a')!.cpu.toArray()).toEqual([1, 1]);
    expect(history.get('a')!.peakCpu).toBe(3);
    history.record(4, [
      { id: 'a', status: 'Completed', cpuCoresInUse: '0', ramInUse: '0' }
    ]);
    expect(history.get('a')!.ended).toBe(true);
    expect(history.get('a')!.cpu.toArray()).toEqual([1, 1]);
  });

  it('forgets the oldest ended sessions beyond its limit', () => {
    const history = new UsageHistory(4, 2);
    const sample = { status: 'Running' as const, cpuCoresInUse: '1' };
    history.record(1, [
      { id: 'a', ...sample },
      { id: 'b', ...sample },
      { id: 'c', ...sample }
    ]);
    history.record(2, []);
    expect(history.get('a')).toBeUndefined();
    expect(history.get('b')!.ended).toBe(true);
    expect(history.get('c')!.ended).toBe(true);
  });
});
