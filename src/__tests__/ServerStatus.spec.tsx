import { nullTranslator } from '@jupyterlab/translation';
import { render, screen } from '@testing-library/react';
import * as React from 'react';

import { ServerStatus } from '../components/ServerStatus';

const trans = nullTranslator.load('canfar_jlab');
const config = {
  version: '0.2.0',
  backend: { kind: 'local', host: '127.0.0.1' }
};

describe('ServerStatus', () => {
  it('shows the server version and backend when the handshake succeeds', () => {
    render(<ServerStatus result={{ kind: 'ok', config }} trans={trans} />);
    expect(screen.getByText('canfar-jlab 0.2.0')).toBeTruthy();
    expect(screen.getByText('Local engine (this machine)')).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('says plainly that the versions differ', () => {
    render(
      <ServerStatus
        result={{ kind: 'mismatch', config, frontend: '0.1.0' }}
        trans={trans}
      />
    );
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toContain('Version mismatch');
    expect(alert.textContent).toContain('canfar-jlab 0.1.0');
    expect(alert.textContent).toContain('server extension is 0.2.0');
  });

  it('says the server extension is missing on a 404', () => {
    render(<ServerStatus result={{ kind: 'missing' }} trans={trans} />);
    expect(screen.getByRole('alert').textContent).toContain(
      'server extension is not running'
    );
  });

  it('names a remote backend by host', () => {
    render(
      <ServerStatus
        result={{
          kind: 'ok',
          config: {
            version: '0.2.0',
            backend: { kind: 'skaha', host: 'ws-uv.canfar.net' }
          }
        }}
        trans={trans}
      />
    );
    expect(screen.getByText('Skaha at ws-uv.canfar.net')).toBeTruthy();
  });
});
