// "Size the next run": what a run's replicas used at their peak against what they asked for.
import { TranslationBundle } from '@jupyterlab/translation';

import { IRun } from './api';
import { formatCores, formatGigabytes } from './format';
import { UsageHistory } from './usage';

export interface IRunPeaks {
  /** Highest memory of any replica, GB (its own report when present, else sampled). */
  ramGB: number | null;
  /** Highest CPU of any replica, cores (sampled). */
  cores: number | null;
}

/** The peaks of a run's replicas, from their status reports and the sampled usage. */
export function runPeaks(run: IRun, usage: UsageHistory): IRunPeaks {
  let ram: number | null = null;
  let cores: number | null = null;
  const more = (a: number | null, b: number | null) =>
    a === null ? b : b === null ? a : Math.max(a, b);
  for (const replica of run.replicas) {
    const series = replica.session_id ? usage.get(replica.session_id) : null;
    const reported =
      typeof replica.peak_rss_bytes === 'number'
        ? replica.peak_rss_bytes / 1e9
        : null;
    ram = more(ram, more(reported, series ? series.peakRam : null));
    cores = more(cores, series && series.cpu.length ? series.peakCpu : null);
  }
  return { ramGB: ram, cores };
}

const round = (gb: number) => Math.max(1, Math.ceil(gb * 1.5));

/**
 * One sentence for the next run's size, or null when the request fits (or nothing is known):
 * memory peaks near the request risk an out-of-memory kill; peaks far below it waste a
 * share of the platform and wait longer in the queue.
 */
export function sizeHint(
  run: IRun,
  peaks: IRunPeaks,
  trans: TranslationBundle
): string | null {
  const hints: string[] = [];
  const ram = run.spec.ram;
  if (peaks.ramGB !== null && peaks.ramGB > 0) {
    const peak = formatGigabytes(peaks.ramGB);
    if (ram && peaks.ramGB >= 0.9 * ram) {
      hints.push(
        trans.__(
          'Memory peaked at %1 of the %2 GB asked for: ask for %3 GB next time.',
          peak,
          ram,
          round(peaks.ramGB)
        )
      );
    } else if (ram && ram > 1 && peaks.ramGB < 0.25 * ram) {
      hints.push(
        trans.__(
          'Memory peaked at %1 of the %2 GB asked for: %3 GB would do.',
          peak,
          ram,
          round(peaks.ramGB)
        )
      );
    } else if (!ram && run.state !== 'active') {
      hints.push(
        trans.__(
          'Memory peaked at %1: about %2 GB per replica is enough.',
          peak,
          round(peaks.ramGB)
        )
      );
    }
  }
  const cores = run.spec.cores;
  if (cores && cores > 1 && peaks.cores !== null && peaks.cores > 0) {
    if (peaks.cores < 0.25 * cores) {
      hints.push(
        trans.__(
          'CPU peaked at %1 of %2: %3 would do.',
          formatCores(peaks.cores),
          formatCores(cores),
          formatCores(Math.max(1, Math.ceil(peaks.cores)))
        )
      );
    }
  }
  return hints.length ? hints.join(' ') : null;
}
