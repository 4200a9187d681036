import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { Status } from '../api';
import { statusLabel } from '../status';

/** A status word with a theme colour (set in CSS from data-status). */
export function StatusBadge(props: {
  status: Status;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <span className="jp-canfar-badge" data-status={props.status}>
      {statusLabel(props.status, props.trans)}
    </span>
  );
}
