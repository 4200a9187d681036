import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IPlatformStats } from '../api';
import { parseGigabytes } from '../usage';

function Meter(props: {
  label: string;
  used: number | null;
  total: number | null;
  unit: string;
}): JSX.Element | null {
  const { used, total } = props;
  if (used === null || total === null || total <= 0) {
    return null;
  }
  const share = Math.min(1, Math.max(0, used / total));
  const text = `${props.label}: ${+used.toFixed(1)} / ${+total.toFixed(1)} ${props.unit}`;
  return (
    <div className="jp-canfar-meter" title={text}>
      <span className="jp-canfar-meter-label">{text}</span>
      <span
        className="jp-canfar-meter-bar"
        role="meter"
        aria-label={props.label}
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={used}
        aria-valuetext={text}
      >
        <span
          className="jp-canfar-meter-fill"
          data-high={share > 0.85 ? 'true' : undefined}
          style={{ width: `${(share * 100).toFixed(1)}%` }}
        />
      </span>
    </div>
  );
}

/** What the session service has handed out against what it has. */
export function PlatformLoad(props: {
  stats: IPlatformStats | null;
  error: string | null;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { stats, error, trans } = props;
  if (!stats) {
    return error ? (
      <div className="jp-canfar-muted">
        {trans.__('Platform load unavailable: %1', error)}
      </div>
    ) : null;
  }
  return (
    <div className="jp-canfar-platform" aria-label={trans.__('Platform load')}>
      <Meter
        label={trans.__('Cores')}
        used={stats.cores?.requestedCPUCores ?? null}
        total={stats.cores?.cpuCoresAvailable ?? null}
        unit={trans.__('cores')}
      />
      <Meter
        label={trans.__('RAM')}
        used={parseGigabytes(stats.ram?.requestedRAM)}
        total={parseGigabytes(stats.ram?.ramAvailable)}
        unit={trans.__('GB')}
      />
    </div>
  );
}
