import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { HandshakeResult } from '../handshake';

export interface IServerStatusProps {
  result: HandshakeResult | null;
  trans: TranslationBundle;
}

function backendLabel(
  backend: { kind: string; host: string },
  trans: TranslationBundle
): string {
  if (backend.kind === 'local') {
    return trans.__('Local engine (this machine)');
  }
  return trans.__('Skaha at %1', backend.host || trans.__('unknown host'));
}

/**
 * The server handshake, said plainly: the version and backend when all is well, and what
 * to do when the server part is missing, stale or unreachable.
 */
export function ServerStatus(props: IServerStatusProps): JSX.Element {
  const { result, trans } = props;
  if (result === null) {
    return (
      <div className="jp-canfar-status" aria-busy="true">
        {trans.__('Connecting to the canfar-jlab server extension…')}
      </div>
    );
  }
  switch (result.kind) {
    case 'ok':
      return (
        <div className="jp-canfar-status" data-state="ok">
          <div>
            <span className="jp-canfar-status-label">{trans.__('Server')}</span>{' '}
            <span className="jp-canfar-version">
              {trans.__('canfar-jlab %1', result.config.version)}
            </span>
          </div>
          <div>
            <span className="jp-canfar-status-label">
              {trans.__('Backend')}
            </span>{' '}
            <span className="jp-canfar-backend">
              {backendLabel(result.config.backend, trans)}
            </span>
          </div>
        </div>
      );
    case 'missing':
      return (
        <div
          className="jp-canfar-status jp-canfar-problem"
          role="alert"
          data-state="missing"
        >
          {trans.__(
            'The canfar-jlab server extension is not running. Install it with "pip install canfar-jlab" in the environment that runs Jupyter, then restart JupyterLab.'
          )}
        </div>
      );
    case 'mismatch':
      return (
        <div
          className="jp-canfar-status jp-canfar-problem"
          role="alert"
          data-state="mismatch"
        >
          {trans.__(
            'Version mismatch: this page runs canfar-jlab %1 but the server extension is %2. Restart JupyterLab and reload the page after upgrading.',
            result.frontend,
            result.config.version
          )}
        </div>
      );
    case 'error':
      return (
        <div
          className="jp-canfar-status jp-canfar-problem"
          role="alert"
          data-state="error"
        >
          {trans.__(
            'Cannot talk to the canfar-jlab server extension: %1',
            result.message
          )}
        </div>
      );
  }
}
