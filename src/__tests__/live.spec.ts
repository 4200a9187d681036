/**
 * @jest-environment-options {"customExportConditions": ["node", "node-addons"]}
 */
// (Node's export conditions, so `ws` is the real server and client, not its browser stub.)
// A real websocket server on 127.0.0.1 plays the Jupyter server's live channel
// (docs/rest-api.md): the client's reconnects, resubscriptions and offsets all run for real.
import { ServerConnection } from '@jupyterlab/services';
import { AddressInfo } from 'net';
import WebSocket, { WebSocketServer } from 'ws';

import { IRun, ISession } from '../api';
import { LiveConnection, retryDelay } from '../live';
import { LogBuffer } from '../logbuffer';
import { CanfarModel } from '../model';
import { makeRun, replica } from './support';

/** Poll for a condition with a deadline (no fixed sleeps). */
async function waitFor(
  predicate: () => boolean,
  timeout = 5000
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error('condition not met in time');
    }
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}

function lines(buffer: LogBuffer): string[] {
  return Array.from({ length: buffer.length }, (_, i) => buffer.line(i));
}

function run(name: string, state: IRun['state'], ids: string[]): IRun {
  const status = state === 'active' ? 'Running' : 'Completed';
  return makeRun(
    name,
    ids.map((id, i) => replica(i + 1, status, { session_id: id })),
    { state }
  );
}

/** The server side of the live protocol, with logs that grow while clients come and go. */
class FakeLiveServer {
  readonly wss: WebSocketServer;
  readonly requests: any[] = [];
  readonly urls: string[] = [];
  logs = new Map<string, string>();
  sessions: ISession[] = [];
  runs: IRun[] = [];
  t = 1;
  /** Misbehave: answer every log subscription from byte 0. */
  ignoreOffsets = false;

  constructor() {
    this.wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    this.wss.on('connection', (socket, request) => {
      this.urls.push(request.url ?? '');
      const following = new Map<string, number>();
      this._following.set(socket, following);
      socket.on('message', raw => {
        const message = JSON.parse(String(raw));
        this.requests.push(message);
        if (message.topic === 'sessions') {
          socket.send(JSON.stringify(this.snapshot()));
        } else if (message.op === 'subscribe') {
          const from = this.ignoreOffsets ? 0 : message.offset;
          following.set(message.session, from);
          this._sendLog(socket, message.session);
        } else if (message.op === 'unsubscribe') {
          following.delete(message.session);
        }
      });
      socket.on('close', () => this._following.delete(socket));
    });
  }

  listening(): Promise<void> {
    return new Promise(resolve =>
      this.wss.address()
        ? resolve()
        : this.wss.once('listening', () => resolve())
    );
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/base/`;
  }

  snapshot(): object {
    return {
      type: 'sessions',
      t: this.t,
      sessions: this.sessions,
      runs: this.runs
    };
  }

  broadcast(message: object): void {
    for (const socket of this._following.keys()) {
      socket.send(JSON.stringify(message));
    }
  }

  /** The replica prints more; followers get the new bytes. */
  print(session: string, text: string): void {
    this.logs.set(session, (this.logs.get(session) ?? '') + text);
    for (const socket of this._following.keys()) {
      this._sendLog(socket, session);
    }
  }

  /** Drop every connection, as a restarting proxy would. */
  dropAll(): void {
    for (const socket of this._following.keys()) {
      socket.terminate();
    }
  }

  close(): Promise<void> {
    return new Promise(resolve => this.wss.close(() => resolve()));
  }

  private _sendLog(socket: WebSocket, session: string): void {
    const following = this._following.get(socket);
    const from = following?.get(session);
    if (from === undefined) {
      return;
    }
    const bytes = Buffer.from(this.logs.get(session) ?? '');
    if (bytes.length <= from) {
      return;
    }
    socket.send(
      JSON.stringify({
        type: 'log',
        session,
        run: null,
        replica: null,
        offset: from,
        next_offset: bytes.length,
        text: bytes.subarray(from).toString()
      })
    );
    following!.set(session, bytes.length);
  }

  private _following = new Map<WebSocket, Map<string, number>>();
}

function settingsFor(wsBase: string): ServerConnection.ISettings {
  const http = wsBase.replace('ws', 'http');
  return ServerConnection.makeSettings({
    baseUrl: http,
    appUrl: http,
    wsUrl: wsBase,
    token: 'secret token',
    appendToken: true,
    WebSocket: WebSocket as any
  });
}

const FAST = { initial: 20, max: 100, factor: 2 };

describe('LiveConnection and CanfarModel over a real websocket', () => {
  let server: FakeLiveServer;
  let live: LiveConnection;
  let model: CanfarModel;

  beforeEach(async () => {
    server = new FakeLiveServer();
    await server.listening();
    live = new LiveConnection(settingsFor(server.url), FAST);
    model = new CanfarModel(live);
    live.connect();
  });

  afterEach(async () => {
    model.dispose();
    live.dispose();
    await server.close();
  });

  it('connects to <base>/canfar-jlab/live with the token and subscribes to sessions', async () => {
    server.sessions = [{ id: 'abc', status: 'Running', name: 'solo' }];
    await waitFor(() => model.loaded);
    expect(server.urls[0]).toBe('/base/canfar-jlab/live?token=secret%20token');
    expect(model.sessions.map(s => s.id)).toEqual(['abc']);
    expect(model.standaloneSessions().map(s => s.id)).toEqual(['abc']);
  });

  it('resumes logs from the last next_offset after a reconnect: nothing twice, nothing lost', async () => {
    server.print('s1', 'one\ntwo\n');
    await waitFor(() => live.state === 'open');
    const buffer = model.openLog('s1');
    await waitFor(() => buffer.length === 2);

    server.dropAll();
    await waitFor(() => live.state !== 'open');
    server.print('s1', 'three\n'); // printed while the tab was disconnected
    await waitFor(() => live.opens === 2 && buffer.length === 3);
    server.print('s1', 'four\n');
    await waitFor(() => buffer.length === 4);

    expect(lines(buffer)).toEqual(['one', 'two', 'three', 'four']);
    const resubscribes = server.requests.filter(r => r.topic === 'logs');
    expect(resubscribes.map(r => r.offset)).toEqual([0, 8]);
    // The sessions subscription was replayed too.
    expect(server.requests.filter(r => r.topic === 'sessions')).toHaveLength(2);
  });

  it('shows no duplicate when a server replays a log from the start', async () => {
    server.ignoreOffsets = true;
    server.print('s1', 'alpha\nbeta\n');
    await waitFor(() => live.state === 'open');
    const buffer = model.openLog('s1');
    await waitFor(() => buffer.length === 2);
    server.dropAll();
    server.print('s1', 'gamma\n');
    await waitFor(() => live.opens === 2 && buffer.length === 3);
    expect(lines(buffer)).toEqual(['alpha', 'beta', 'gamma']);
  });

  it('shares one subscription per session and drops it with the last viewer', async () => {
    await waitFor(() => live.state === 'open');
    const a = model.openLog('s2');
    const b = model.openLog('s2');
    expect(a).toBe(b);
    model.closeLog('s2');
    model.closeLog('s2');
    await waitFor(() => server.requests.some(r => r.op === 'unsubscribe'));
    expect(server.requests.filter(r => r.topic === 'logs')).toEqual([
      { op: 'subscribe', topic: 'logs', session: 's2', offset: 0 },
      { op: 'unsubscribe', topic: 'logs', session: 's2' }
    ]);
  });

  it('tells the server when the last viewer hides a log and when one shows it again', async () => {
    await waitFor(() => live.state === 'open');
    model.openLog('s3'); // a shown panel
    model.openLog('s3', false); // a hidden one
    model.showLog('s3', false); // the shown one is hidden: nobody sees it now
    model.showLog('s3', true); // shown again
    model.closeLog('s3', true);
    model.closeLog('s3');
    await waitFor(() => server.requests.some(r => r.op === 'unsubscribe'));
    expect(server.requests.filter(r => r.topic === 'logs')).toEqual([
      { op: 'subscribe', topic: 'logs', session: 's3', offset: 0 },
      { op: 'visible', topic: 'logs', session: 's3', visible: false },
      { op: 'visible', topic: 'logs', session: 's3', visible: true },
      { op: 'visible', topic: 'logs', session: 's3', visible: false },
      { op: 'unsubscribe', topic: 'logs', session: 's3' }
    ]);
  });

  it('tells once when a run it saw running has ended', async () => {
    const ended: string[] = [];
    model.runEnded.connect((_, r) => ended.push(`${r.name}:${r.state}`));
    server.runs = [
      run('old', 'completed', ['x']),
      run('fit', 'active', ['a', 'b'])
    ];
    await waitFor(() => model.loaded);
    expect(ended).toEqual([]); // a run that ended before we looked is not news

    server.t = 2;
    server.runs = [
      run('old', 'completed', ['x']),
      run('fit', 'completed', ['a', 'b'])
    ];
    server.broadcast(server.snapshot());
    await waitFor(() => ended.length === 1);
    // The server's own run_ended for the same attempt does not notify twice.
    let updates = 0;
    model.changed.connect(() => updates++);
    server.broadcast({
      type: 'run_ended',
      run: run('fit', 'completed', ['a', 'b'])
    });
    server.t = 3;
    server.broadcast(server.snapshot());
    await waitFor(() => updates === 2);
    expect(ended).toHaveLength(1);

    // A re-run (new session for replica 2) that ends is a new attempt: told again, by the
    // server's run_ended this time.
    server.t = 4;
    server.runs = [
      run('old', 'completed', ['x']),
      run('fit', 'active', ['a', 'c'])
    ];
    server.broadcast(server.snapshot());
    await waitFor(() => updates === 3);
    server.broadcast({
      type: 'run_ended',
      run: run('fit', 'failed', ['a', 'c'])
    });
    await waitFor(() => ended.length === 2);
    expect(ended).toEqual(['fit:completed', 'fit:failed']);
  });

  it('ignores the end of a run it never saw running (replayed to a new tab)', async () => {
    const ended: string[] = [];
    model.runEnded.connect((_, r) => ended.push(r.name));
    server.runs = [run('done', 'completed', ['x'])];
    await waitFor(() => model.loaded);
    let updates = 0;
    model.changed.connect(() => updates++);
    server.broadcast({
      type: 'run_ended',
      run: run('done', 'completed', ['x'])
    });
    await waitFor(() => updates === 1);
    expect(ended).toEqual([]);
  });

  it('tells when a run launched from this tab ends, even if never listed running', async () => {
    const ended: string[] = [];
    model.runEnded.connect((_, r) => ended.push(r.name));
    await waitFor(() => model.loaded);
    model.updateRun(run('quick', 'active', ['q1'])); // the POST runs answer
    server.broadcast({
      type: 'run_ended',
      run: run('quick', 'completed', ['q1'])
    });
    await waitFor(() => ended.length === 1);
    expect(model.run('quick')?.state).toBe('completed');
  });

  it('passes server errors on and stops retrying once disposed', async () => {
    const errors: string[] = [];
    model.errorReceived.connect((_, m) => errors.push(m));
    await waitFor(() => live.state === 'open');
    server.broadcast({
      type: 'error',
      message: 'logs: a session id is required'
    });
    await waitFor(() => errors.length === 1);
    live.dispose();
    expect(live.state).toBe('disposed');
    server.dropAll();
    const opens = server.urls.length;
    // Another client connecting proves the server is up; ours must not come back.
    const other = new LiveConnection(settingsFor(server.url), FAST);
    other.connect();
    await waitFor(() => other.state === 'open');
    other.dispose();
    expect(server.urls.length).toBe(opens + 1);
  });
});

describe('retryDelay', () => {
  it('doubles up to the cap, with jitter between half and all of it', () => {
    const backoff = { initial: 500, max: 30_000, factor: 2 };
    expect(retryDelay(0, backoff, () => 1)).toBe(500);
    expect(retryDelay(0, backoff, () => 0)).toBe(250);
    expect(retryDelay(3, backoff, () => 1)).toBe(4000);
    expect(retryDelay(20, backoff, () => 1)).toBe(30_000);
  });
});
