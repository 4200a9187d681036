import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ServerStatus } from './components/ServerStatus';
import { handshake, HandshakeResult } from './handshake';
import { canfarIcon } from './icons';

/** The left-sidebar panel titled "CANFAR". */
export class CanfarSidebar extends ReactWidget {
  constructor(
    private readonly _settings: ServerConnection.ISettings,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.id = 'canfar-jlab-sidebar';
    this.addClass('jp-canfar-sidebar');
    this.title.icon = canfarIcon;
    this.title.caption = _trans.__('CANFAR batch runs');
    void this.refresh();
  }

  /** The latest handshake answer, or null while it is pending. */
  get handshake(): HandshakeResult | null {
    return this._handshake;
  }

  /** Ask the server again (after an upgrade or a restart). */
  async refresh(): Promise<void> {
    this._handshake = await handshake(this._settings);
    this.update();
  }

  render(): JSX.Element {
    return (
      <div className="jp-canfar-sidebar-content">
        <header className="jp-canfar-header">
          <h2 className="jp-canfar-title">{this._trans.__('CANFAR')}</h2>
        </header>
        <ServerStatus result={this._handshake} trans={this._trans} />
      </div>
    );
  }

  private _handshake: HandshakeResult | null = null;
}
