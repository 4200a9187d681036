// Platform load from GET stats, polled while someone can see it.
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IPlatformStats } from './api';

export class PlatformStatsModel implements IDisposable {
  constructor(options: {
    fetch: () => Promise<IPlatformStats>;
    /** True while nobody can see the numbers (the sidebar is closed). */
    hidden: () => boolean;
    interval?: number;
  }) {
    this._poll = new Poll({
      auto: false,
      factory: async () => {
        try {
          this._stats = await options.fetch();
          this._error = null;
        } catch (error) {
          this._error = (error as Error).message;
          this._changed.emit();
          throw error; // let the poll back off
        }
        this._changed.emit();
      },
      frequency: {
        interval: options.interval ?? 30_000,
        backoff: true,
        max: 300_000
      },
      standby: () => options.hidden() || 'when-hidden',
      name: 'canfar-jlab:platform-stats'
    });
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get stats(): IPlatformStats | null {
    return this._stats;
  }

  get error(): string | null {
    return this._error;
  }

  /** Start polling (or poll now when already started). */
  refresh(): void {
    if (this._started) {
      void this._poll.refresh();
    } else {
      this._started = true;
      void this._poll.start();
    }
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private _poll: Poll;
  private _started = false;
  private _stats: IPlatformStats | null = null;
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);
}
