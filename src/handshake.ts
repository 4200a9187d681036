import { ServerConnection } from '@jupyterlab/services';

import { ApiError, requestAPI } from './request';
import { FRONTEND_VERSION } from './version';

/** The server extension's answer on GET /canfar-jlab/config. */
export interface IServerConfig {
  version: string;
  backend: { kind: string; host: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** What the sidebar learns from the version handshake. */
export type HandshakeResult =
  | { kind: 'ok'; config: IServerConfig }
  | { kind: 'missing' }
  | { kind: 'mismatch'; config: IServerConfig; frontend: string }
  | { kind: 'error'; message: string };

/**
 * Ask the server extension who it is. A 404 means the server part is not installed or
 * not enabled; another version means a stale build on one side.
 */
export async function handshake(
  settings: ServerConnection.ISettings,
  frontendVersion: string = FRONTEND_VERSION
): Promise<HandshakeResult> {
  try {
    const config = await requestAPI<IServerConfig>('config', settings);
    if (config.version !== frontendVersion) {
      return { kind: 'mismatch', config, frontend: frontendVersion };
    }
    return { kind: 'ok', config };
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return { kind: 'missing' };
    }
    return { kind: 'error', message: (error as Error).message };
  }
}
