// A real HTTP server on 127.0.0.1 stands in for the Jupyter server: the helper's fetch,
// URL joining and error handling all run for real.
import { ServerConnection } from '@jupyterlab/services';
import * as http from 'http';
import { AddressInfo } from 'net';

import { handshake } from '../handshake';
import { ApiError, requestAPI } from '../request';

type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void;

function serve(routes: Record<string, Route>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    // ServerConnection may add a cache-busting query string: route on the path alone.
    const route = routes[new URL(req.url ?? '/', 'http://127.0.0.1').pathname];
    if (route) {
      route(req, res);
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: 'Not Found', reason: null }));
    }
  });
  return new Promise(resolve =>
    server.listen(0, '127.0.0.1', () => resolve(server))
  );
}

function settingsFor(baseUrl: string): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl,
    appUrl: baseUrl,
    wsUrl: baseUrl.replace('http', 'ws'),
    token: 'test-jupyter-token',
    init: { cache: 'no-store' },
    fetch: globalThis.fetch.bind(globalThis),
    Request: globalThis.Request,
    Headers: globalThis.Headers
  });
}

const json =
  (status: number, body: unknown): Route =>
  (_req, res) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };

describe('requestAPI', () => {
  let server: http.Server;
  let base: string;
  const seen: http.IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    server = await serve({
      '/a%40b/canfar-jlab/config': (req, res) => {
        seen.push(req.headers);
        json(200, {
          version: '9.9.9',
          backend: { kind: 'local', host: '127.0.0.1' }
        })(req, res);
      },
      '/a%40b/canfar-jlab/broken': json(502, {
        message: 'Skaha did not answer in 10 s'
      })
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/a%40b/`;
  });

  afterAll(() => new Promise(resolve => server.close(resolve)));

  it('returns the parsed JSON of a route under the base URL', async () => {
    const config = await requestAPI<{ version: string }>(
      'config',
      settingsFor(base)
    );
    expect(config.version).toBe('9.9.9');
    expect(seen[seen.length - 1].authorization).toBe(
      'token test-jupyter-token'
    );
  });

  it('turns a 404 into an ApiError with status 404', async () => {
    const failure = requestAPI('nowhere', settingsFor(base));
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toMatchObject({
      status: 404,
      message: 'Not Found'
    });
  });

  it("carries the server's one-line message on other errors", async () => {
    await expect(requestAPI('broken', settingsFor(base))).rejects.toMatchObject(
      {
        status: 502,
        message: 'Skaha did not answer in 10 s'
      }
    );
  });

  it('reports a network error with status 0', async () => {
    // A port that was just closed: nothing listens there.
    const closed = await serve({});
    const port = (closed.address() as AddressInfo).port;
    await new Promise(resolve => closed.close(resolve));
    const failure = requestAPI(
      'config',
      settingsFor(`http://127.0.0.1:${port}/`)
    );
    await expect(failure).rejects.toMatchObject({ status: 0 });
    await expect(failure).rejects.toThrow(/Cannot reach the Jupyter server/);
  });

  it('handshake: ok, mismatch, missing and unreachable', async () => {
    expect(await handshake(settingsFor(base), '9.9.9')).toMatchObject({
      kind: 'ok'
    });
    expect(await handshake(settingsFor(base), '1.0.0')).toMatchObject({
      kind: 'mismatch',
      frontend: '1.0.0',
      config: { version: '9.9.9' }
    });
    const bare = `http://127.0.0.1:${(server.address() as AddressInfo).port}/other/`;
    expect(await handshake(settingsFor(bare), '9.9.9')).toEqual({
      kind: 'missing'
    });
  });
});
