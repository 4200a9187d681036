// CPU and memory in use per session, sampled from successive `sessions` messages.
import { ISession } from './api';
import { TERMINAL_STATUSES } from './status';

/** A fixed-size window of the latest samples: old ones fall off, memory stays bounded. */
export class RingBuffer {
  constructor(readonly capacity: number) {
    this._data = new Float64Array(capacity);
  }

  get length(): number {
    return this._length;
  }

  push(value: number): void {
    this._data[(this._start + this._length) % this.capacity] = value;
    if (this._length < this.capacity) {
      this._length++;
    } else {
      this._start = (this._start + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  toArray(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this._length; i++) {
      out.push(this._data[(this._start + i) % this.capacity]);
    }
    return out;
  }

  last(): number | undefined {
    return this._length === 0
      ? undefined
      : this._data[(this._start + this._length - 1) % this.capacity];
  }

  private _data: Float64Array;
  private _start = 0;
  private _length = 0;
}

/** Cores from Skaha's `cpuCoresInUse` ("0.250"), or null when absent or unreadable. */
export function parseCores(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value.trim() === '') {
    return null;
  }
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

const BINARY: Record<string, number> = {
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40
};
const DECIMAL: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/**
 * Decimal GB from a memory figure: v1's bare "8.59" (already GB), the stats form "1234.5G",
 * or a Kubernetes quantity ("512Mi", "8Gi").
 */
export function parseGigabytes(
  value: string | null | undefined
): number | null {
  const match = /^\s*([0-9]*\.?[0-9]+)\s*([KMGT])?(i)?B?\s*$/i.exec(
    value ?? ''
  );
  if (!match) {
    return null;
  }
  const number = Number(match[1]);
  if (!match[2]) {
    return number;
  }
  const unit = match[2].toUpperCase();
  return (number * (match[3] ? BINARY[unit] : DECIMAL[unit])) / 1e9;
}

export interface IUsageSeries {
  cpu: RingBuffer;
  ram: RingBuffer;
  /** The highest figures ever sampled (the window may have dropped them). */
  peakCpu: number;
  peakRam: number;
  /** Whether the session has ended (or gone): no more samples will come. */
  ended: boolean;
}

/** No more figures will come: ended (status.ts), or on its way out. */
const ENDED: ReadonlySet<string> = new Set<string>([
  ...TERMINAL_STATUSES,
  'Terminating'
]);

/**
 * One pair of ring buffers per session. A session that ends (or leaves the list) keeps its
 * history, so a finished replica still shows what it used; the oldest ended ones are
 * forgotten beyond `keepEnded`.
 */
export class UsageHistory {
  constructor(
    readonly capacity = 60,
    readonly keepEnded = 500
  ) {}

  get(sessionId: string): IUsageSeries | undefined {
    return this._series.get(sessionId);
  }

  /** Take one sample from a `sessions` message (sent at `t`, epoch seconds). */
  record(t: number, sessions: ISession[]): void {
    if (t === this._lastT) {
      return; // the same snapshot again (a new subscriber): not a new sample
    }
    this._lastT = t;
    const seen = new Set<string>();
    for (const session of sessions) {
      seen.add(session.id);
      let series = this._series.get(session.id);
      if (ENDED.has(session.status)) {
        this._end(session.id, series);
        continue; // figures of an ended session are noise (zeros or stale)
      }
      const cpu = parseCores(session.cpuCoresInUse);
      const ram = parseGigabytes(session.ramInUse);
      if (cpu === null && ram === null) {
        continue;
      }
      if (!series) {
        series = {
          cpu: new RingBuffer(this.capacity),
          ram: new RingBuffer(this.capacity),
          peakCpu: 0,
          peakRam: 0,
          ended: false
        };
        this._series.set(session.id, series);
      }
      series.cpu.push(cpu ?? 0);
      series.ram.push(ram ?? 0);
      series.peakCpu = Math.max(series.peakCpu, cpu ?? 0);
      series.peakRam = Math.max(series.peakRam, ram ?? 0);
    }
    for (const [id, series] of this._series) {
      if (!seen.has(id)) {
        this._end(id, series);
      }
    }
  }

  private _end(id: string, series: IUsageSeries | undefined): void {
    if (!series || series.ended) {
      return;
    }
    series.ended = true;
    this._ended.push(id);
    while (this._ended.length > this.keepEnded) {
      this._series.delete(this._ended.shift()!);
    }
  }

  private _series = new Map<string, IUsageSeries>();
  private _ended: string[] = [];
  private _lastT: number | null = null;
}
