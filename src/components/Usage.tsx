import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IUsageSeries } from '../usage';
import { Sparkline } from './Sparkline';

/** CPU and memory sparklines of one session, with the latest figures. */
export function Usage(props: {
  series: IUsageSeries | undefined;
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
  return (
    <span className="jp-canfar-usage">
      <Sparkline
        className="jp-canfar-sparkline-cpu"
        values={cpu}
        label={trans.__('CPU: %1 cores in use', cores.toFixed(2))}
      />
      <span className="jp-canfar-usage-figure">{cores.toFixed(2)}</span>
      <Sparkline
        className="jp-canfar-sparkline-ram"
        values={ram}
        label={trans.__('Memory: %1 GB in use', gb.toFixed(2))}
      />
      <span className="jp-canfar-usage-figure">
        {trans.__('%1 GB', gb.toFixed(2))}
      </span>
    </span>
  );
}
