import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IPlatformStats, ISession } from '../api';
import { formatCores, formatGigabytes } from '../format';
import { readPlatformStats, sessionsInUse } from '../stats';

function Meter(props: {
  label: string;
  used: number | null;
  total: number | null;
  text: string;
}): JSX.Element | null {
  const { used, total } = props;
  if (used === null || total === null || total <= 0) {
    return null;
  }
  const share = Math.min(1, Math.max(0, used / total));
  return (
    <div className="jp-canfar-meter" title={props.text}>
      <span className="jp-canfar-meter-label">{props.text}</span>
      <span
        className="jp-canfar-meter-bar"
        role="meter"
        aria-label={props.label}
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={used}
        aria-valuetext={props.text}
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

const whole = (n: number) => (+n.toFixed(1)).toLocaleString();

/**
 * Your sessions' use now (pushed with the session list), then the platform's allocation
 * against its capacity (Skaha's stats; "unavailable" when its metrics backend is down).
 */
export function PlatformLoad(props: {
  stats: IPlatformStats | null;
  error: string | null;
  unavailable?: boolean;
  sessions: readonly ISession[];
  trans: TranslationBundle;
}): JSX.Element | null {
  const { stats, error, trans } = props;
  const use = sessionsInUse(props.sessions);
  const mine =
    use.running > 0 ? (
      <div className="jp-canfar-inuse" role="status">
        {use.measured
          ? trans._n(
              'In use by your %1 running session: %2 · %3',
              'In use by your %1 running sessions: %2 · %3',
              use.running,
              formatCores(use.cores),
              formatGigabytes(use.ramGB)
            )
          : trans._n(
              '%1 running session (no usage figures yet)',
              '%1 running sessions (no usage figures yet)',
              use.running
            )}
      </div>
    ) : null;
  let platform: JSX.Element | null = null;
  if (props.unavailable) {
    platform = (
      <div
        className="jp-canfar-muted jp-canfar-platform-unavailable"
        title={error ?? undefined}
      >
        {trans.__('Platform metrics unavailable')}
      </div>
    );
  } else if (stats) {
    const f = readPlatformStats(stats);
    platform = (
      <>
        <Meter
          label={trans.__('Platform cores allocated')}
          used={f.coresAllocated}
          total={f.coresCapacity}
          text={trans.__(
            'Platform cores: %1 allocated of %2 capacity',
            whole(f.coresAllocated ?? 0),
            whole(f.coresCapacity ?? 0)
          )}
        />
        <Meter
          label={trans.__('Platform memory allocated')}
          used={f.ramAllocatedGB}
          total={f.ramCapacityGB}
          text={trans.__(
            'Platform memory: %1 allocated of %2 GB capacity',
            whole(f.ramAllocatedGB ?? 0),
            whole(f.ramCapacityGB ?? 0)
          )}
        />
        {f.sessionMax && (
          <div className="jp-canfar-note">
            {trans.__(
              '%1: %2 cores, %3 GB',
              f.sessionMax.label,
              whole(f.sessionMax.cores ?? 0),
              whole(f.sessionMax.ramGB ?? 0)
            )}
          </div>
        )}
      </>
    );
  } else if (error) {
    platform = (
      <div className="jp-canfar-muted">
        {trans.__('Platform load unavailable: %1', error)}
      </div>
    );
  }
  if (!mine && !platform) {
    return null;
  }
  return (
    <div className="jp-canfar-platform" aria-label={trans.__('Platform load')}>
      {mine}
      {platform}
    </div>
  );
}
