// Shared fixtures: protocol messages as the server sends them, fed to a real model.
import { ServerConnection } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { IReplica, IRun, ISession, Status } from '../api';
import { LiveConnection, LiveMessage } from '../live';
import { CanfarModel } from '../model';

export function replica(
  index: number,
  status: Status,
  patch: Partial<IReplica> = {}
): IReplica {
  return {
    index,
    name: `fit-${index}`,
    session_id: `s${index}`,
    status,
    error: null,
    started: null,
    ended: null,
    log: null,
    ...patch
  };
}

export function makeRun(
  name: string,
  replicas: IReplica[],
  patch: Partial<IRun> = {}
): IRun {
  return {
    name,
    notebook: '/home/me/fit.ipynb',
    created: '2026-11-21T10:00:00Z',
    folder: `/home/me/canfar-runs/${name}`,
    folder_relative: `canfar-runs/${name}`,
    spec: {
      image: 'img',
      cores: null,
      ram: null,
      gpus: null,
      env: {},
      replicas: replicas.length
    },
    replicas: replicas.map(r => ({ ...r, name: `${name}-${r.index}` })),
    counts: {},
    state: 'active',
    ...patch
  };
}

export function session(
  id: string,
  status: Status,
  patch: Partial<ISession> = {}
): ISession {
  return { id, status, name: id, type: 'headless', ...patch };
}

/**
 * A model on a live connection that never opens a socket; `send` delivers a message exactly
 * as the socket's onmessage would (the socket itself is tested in live.spec.ts).
 */
export function offlineModel(): {
  model: CanfarModel;
  live: LiveConnection;
  send: (message: LiveMessage) => void;
} {
  const live = new LiveConnection(
    ServerConnection.makeSettings({
      baseUrl: 'http://127.0.0.1:1/',
      wsUrl: 'ws://127.0.0.1:1/'
    })
  );
  const model = new CanfarModel(live);
  const send = (message: LiveMessage) =>
    (live.message as Signal<LiveConnection, LiveMessage>).emit(message);
  return { model, live, send };
}
