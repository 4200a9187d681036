import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { formatCores, formatGigabytes } from '../format';
import { IUsageSeries } from '../usage';
import { Sparkline } from './Sparkline';

/**
 * CPU (cores) and memory sparklines of one session with a legend: the latest figure while it
 * runs, the peak always, and the history kept after it ends.
 */
export function Usage(props: {
  series: IUsageSeries | undefined;
  /** The replica's own peak memory report, bytes (more exact than sampling). */
  peakRssBytes?: number | null;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { series, trans } = props;
  if (!series || series.cpu.length === 0) {
    return null;
  }
  const cpu = series.cpu.toArray();
  const ram = series.ram.toArray();
  const cores = series.cpu.last() ?? 0;
  const gb = series.ram.last() ?? 0;
  const peakGB =
    typeof props.peakRssBytes === 'number'
      ? Math.max(series.peakRam, props.peakRssBytes / 1e9)
      : series.peakRam;
  const cpuText = series.ended
    ? trans.__('CPU peak %1', formatCores(series.peakCpu))
    : trans.__(
        'CPU %1 (peak %2)',
        formatCores(cores),
        formatCores(series.peakCpu)
      );
  const ramText = series.ended
    ? trans.__('Memory peak %1', formatGigabytes(peakGB))
    : trans.__(
        'Memory %1 (peak %2)',
        formatGigabytes(gb),
        formatGigabytes(peakGB)
      );
  return (
    <span className="jp-canfar-usage" data-ended={series.ended || undefined}>
      <span className="jp-canfar-usage-item">
        <Sparkline
          className="jp-canfar-sparkline-cpu"
          values={cpu}
          label={cpuText}
        />
        <span className="jp-canfar-usage-figure jp-canfar-usage-cpu">
          <span className="jp-canfar-legend jp-canfar-legend-cpu" />
          {cpuText}
        </span>
      </span>
      <span className="jp-canfar-usage-item">
        <Sparkline
          className="jp-canfar-sparkline-ram"
          values={ram}
          label={ramText}
        />
        <span className="jp-canfar-usage-figure jp-canfar-usage-ram">
          <span className="jp-canfar-legend jp-canfar-legend-ram" />
          {ramText}
        </span>
      </span>
    </span>
  );
}
