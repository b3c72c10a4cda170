import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSupervisorHandler, type SupervisorRoutes } from '../../src/admin/handler.js';
import { createMetrics } from '../../src/admin/metrics.js';
import { AppvisorError } from '../../src/errors.js';
import type { HistoryEntry } from '../../src/state/types.js';
import { appView, FakeBackend, listen, MemoryLog, rawRequest } from './fakes.js';

const TOKEN = 'test-admin-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const HISTORY: HistoryEntry[] = [
  {
    app: 'blog',
    reconcileId: 'r1',
    at: '2024-01-01T00:00:00.000Z',
    outcome: 'created',
    steps: [],
    durationMs: 12,
  },
];

let root: string;
let backend: FakeBackend;
let log: MemoryLog;
let handler: SupervisorRoutes;
let srv: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'appvisor-admin-'));
  const ui = join(root, 'ui');
  await mkdir(join(ui, 'sub'), { recursive: true });
  await writeFile(join(ui, 'index.html'), '<!doctype html><title>test ui</title>');
  await writeFile(join(ui, 'app.js'), 'export {};');
  await writeFile(join(ui, 'style.css'), 'body{}');
  await writeFile(join(ui, 'sub', 'icon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(ui, '.hidden'), 'hidden');
  await writeFile(join(root, 'secret.txt'), 'outside the ui folder');
  await symlink(join(root, 'secret.txt'), join(ui, 'link.txt'));
  backend = new FakeBackend([]);
  log = new MemoryLog();
  const metrics = createMetrics(backend, { defaultMetrics: false });
  handler = createSupervisorHandler({ backend, token: TOKEN, metrics, log, uiDir: ui });
  srv = await listen(handler);
});
afterAll(async () => {
  handler.close();
  await srv.close();
  await rm(root, { recursive: true, force: true });
});
beforeEach(() => {
  backend.apps.clear();
  backend.apps.set('blog', appView('blog', { status: 'running', domains: ['blog.example'] }));
  backend.apps.set('shop', appView('shop'));
  backend.histories.set('blog', HISTORY);
  backend.calls.length = 0;
  backend.isReady = false;
  backend.listOverride = undefined;
  log.lines.length = 0;
});

const get = (path: string, init: RequestInit = {}) =>
  fetch(`${srv.base}${path}`, { redirect: 'manual', ...init });

function expectJsonHeaders(res: Response): void {
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(res.headers.get('cache-control')).toBe('no-store');
}

describe('health, readiness, metrics (no auth)', () => {
  it('healthz answers ok', async () => {
    const res = await get('/_supervisor/healthz');
    expect(res.status).toBe(200);
    expectJsonHeaders(res);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('readyz is 503 until the backend is ready, then 200', async () => {
    let res = await get('/_supervisor/readyz');
    expect(res.status).toBe(503);
    expectJsonHeaders(res);
    expect(await res.json()).toEqual({ status: 'starting' });
    backend.isReady = true;
    res = await get('/_supervisor/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  it('readyz is 503 waiting, naming why, while a replica on newer code waits for an older one to go', async () => {
    backend.isReady = true;
    backend.waiting = 'replica web-1-7-ab12 runs application version 2, older than this one’s 3';
    let res = await get('/_supervisor/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'waiting', detail: backend.waiting });
    backend.waiting = undefined;
    res = await get('/_supervisor/readyz');
    expect(res.status).toBe(200);
  });

  it('metrics answers Prometheus text', async () => {
    const res = await get('/_supervisor/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.text();
    expect(body).toContain('appvisor_apps{status="running"} 1');
    expect(body).toContain('appvisor_apps{status="stopped"} 1');
  });

  it('a query string does not change the route', async () => {
    const res = await get('/_supervisor/healthz?x=1');
    expect(res.status).toBe(200);
  });

  it.each(['healthz', 'readyz', 'metrics', ''])('POST /_supervisor/%s -> 405 with Allow', async (route) => {
    const res = await get(`/_supervisor/${route}`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expectJsonHeaders(res);
    expect(await res.json()).toMatchObject({ error: { code: 'METHOD_NOT_ALLOWED' } });
  });
});

describe('admin auth', () => {
  const ROUTES: [string, string][] = [
    ['GET', '/_supervisor/api/apps'],
    ['GET', '/_supervisor/api/apps/blog'],
    ['GET', '/_supervisor/api/apps/no-such-app'],
    ['GET', '/_supervisor/api/apps/blog/history'],
    ['GET', '/_supervisor/api/apps/no-such-app/history'],
    ['POST', '/_supervisor/api/apps/blog/start'],
    ['POST', '/_supervisor/api/apps/blog/stop'],
    ['POST', '/_supervisor/api/apps/no-such-app/start'],
    ['GET', '/_supervisor/api/plan'],
    ['GET', '/_supervisor/api/events'],
    ['GET', '/_supervisor/api/no-such-route'],
    ['DELETE', '/_supervisor/api/apps/blog'],
    ['GET', '/_supervisor/%61pi/apps'],
  ];
  const BAD: [string, Record<string, string>][] = [
    ['no header', {}],
    ['a wrong token', { authorization: 'Bearer not-the-token-0123456789abcdef' }],
    ['the Basic scheme', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }],
    ['the token without a scheme', { authorization: TOKEN }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ];
  const CASES = ROUTES.flatMap(([method, path]) =>
    BAD.map(([why, headers]) => ({ method, path, why, headers })),
  );

  it('refuses every admin route without a valid token with the same 401, and changes nothing', async () => {
    const bodies = new Set<string>();
    for (const { method, path, why, headers } of CASES) {
      const res = await rawRequest(srv.port, path, { method, headers });
      expect(res.status, `${method} ${path} with ${why}`).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-store');
      bodies.add(res.body);
    }
    expect([...bodies]).toEqual([
      JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'missing or invalid admin token' } }),
    ]);
    expect(backend.calls).toEqual([]);
  });
});

describe('admin API (with the token)', () => {
  it('GET /api/apps lists the apps', async () => {
    const res = await get('/_supervisor/api/apps', { headers: AUTH });
    expect(res.status).toBe(200);
    expectJsonHeaders(res);
    expect(await res.json()).toEqual([...backend.apps.values()]);
  });

  it('GET /api/apps/<name> answers one app, 404 APP_NOT_FOUND for others', async () => {
    let res = await get('/_supervisor/api/apps/blog', { headers: AUTH });
    expect(res.status).toBe(200);
    expectJsonHeaders(res);
    expect(await res.json()).toEqual(backend.apps.get('blog'));
    res = await get('/_supervisor/api/apps/nope', { headers: AUTH });
    expect(res.status).toBe(404);
    expectJsonHeaders(res);
    expect(await res.json()).toEqual({
      error: { code: 'APP_NOT_FOUND', message: 'no app named nope', app: 'nope' },
    });
  });

  it('decodes the app name segment', async () => {
    backend.apps.set('a b', appView('a b'));
    const res = await get('/_supervisor/api/apps/a%20b', { headers: AUTH });
    expect(await res.json()).toMatchObject({ name: 'a b' });
  });

  it('GET /api/apps/<name>/history answers the entries, 404 for an unknown app', async () => {
    let res = await get('/_supervisor/api/apps/blog/history', { headers: AUTH });
    expect(res.status).toBe(200);
    expectJsonHeaders(res);
    expect(await res.json()).toEqual(HISTORY);
    res = await get('/_supervisor/api/apps/nope/history', { headers: AUTH });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'APP_NOT_FOUND', app: 'nope' } });
  });

  it.each([
    ['start', 'starting'],
    ['stop', 'stopping'],
  ])('POST /api/apps/<name>/%s -> 202 and the app', async (action, status) => {
    const res = await get(`/_supervisor/api/apps/shop/${action}`, { method: 'POST', headers: AUTH });
    expect(res.status).toBe(202);
    expectJsonHeaders(res);
    expect(await res.json()).toMatchObject({ name: 'shop', status });
    expect(backend.calls).toEqual([`${action} shop`]);
  });

  it.each(['start', 'stop'])(
    'POST /api/apps/<unknown>/%s -> 404 without calling the backend',
    async (action) => {
      const res = await get(`/_supervisor/api/apps/nope/${action}`, { method: 'POST', headers: AUTH });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: 'APP_NOT_FOUND', app: 'nope' } });
      expect(backend.calls).toEqual([]);
    },
  );

  it.each(['start', 'stop'] as const)(
    'POST /api/bulk/%s records each app as its own route does; unknown and refused apps are listed, not fatal',
    async (action) => {
      const stop = backend[action].bind(backend);
      backend[action] = async (name: string) => {
        if (name === 'shop') throw new AppvisorError('APP_DISABLED', { app: name });
        if (name === 'blog') return stop(name);
        throw new Error('boom: the store went away');
      };
      backend.apps.set('docs', appView('docs'));
      try {
        const res = await get(`/_supervisor/api/bulk/${action}`, {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'application/json' },
          body: JSON.stringify({ apps: ['nope', 'blog', 'shop', 'blog', 'docs'] }),
        });
        expect(res.status).toBe(200);
        expectJsonHeaders(res);
        expect(await res.json()).toEqual({
          action,
          accepted: ['blog'],
          refused: [
            { app: 'nope', error: { code: 'APP_NOT_FOUND', message: expect.stringContaining('nope') } },
            { app: 'shop', error: { code: 'APP_DISABLED', message: expect.stringContaining('shop') } },
            { app: 'docs', error: { code: 'INTERNAL', message: 'boom: the store went away' } },
          ],
        });
        // Each name once, however often it was sent; an unknown one never reaches the backend.
        expect(backend.calls).toEqual([`${action} blog`]);
        expect(log.lines.some((l) => l.msg === 'bulk action failed for an app')).toBe(true);
      } finally {
        backend[action] = stop;
      }
    },
  );

  it.each([
    ['no body', undefined, /non-empty list of app names/],
    ['no list', JSON.stringify({ names: ['blog'] }), /non-empty list of app names/],
    ['an empty list', JSON.stringify({ apps: [] }), /non-empty list of app names/],
    ['a name that is not a string', JSON.stringify({ apps: ['blog', 7] }), /non-empty list of app names/],
    [
      '501 apps',
      JSON.stringify({ apps: Array.from({ length: 501 }, (_, i) => `app-${i}`) }),
      /at most 500 apps per request, got 501/,
    ],
    ['not JSON', '{apps:', /not JSON/],
  ])(
    'POST /api/bulk/stop with %s -> 400 saying what to send, nothing stopped',
    async (_what, body, message) => {
      const res = await get('/_supervisor/api/bulk/stop', {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body }),
      });
      expect(res.status).toBe(400);
      const answer = (await res.json()) as { error: { code: string; message: string } };
      expect(answer.error.code).toBe('REQUEST_INVALID');
      expect(answer.error.message).toMatch(message);
      expect(backend.calls).toEqual([]);
    },
  );

  it('GET /api/bulk/stop -> 405, /api/bulk/restart -> 404', async () => {
    const res = await get('/_supervisor/api/bulk/stop', { headers: AUTH });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect((await get('/_supervisor/api/bulk/restart', { method: 'POST', headers: AUTH })).status).toBe(404);
  });

  it('GET /api/plan answers the plan object', async () => {
    const res = await get('/_supervisor/api/plan', { headers: AUTH });
    expect(res.status).toBe(200);
    expectJsonHeaders(res);
    expect(await res.json()).toEqual(backend.planJson);
  });

  it.each([
    ['GET', '/_supervisor/api/apps/blog/start', 'POST'],
    ['PUT', '/_supervisor/api/apps', 'GET'],
    ['DELETE', '/_supervisor/api/apps/blog', 'GET'],
    ['POST', '/_supervisor/api/plan', 'GET'],
    ['POST', '/_supervisor/api/events', 'GET'],
  ])('%s %s -> 405, Allow: %s', async (method, path, allow) => {
    const res = await get(path, { method, headers: AUTH });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allow);
    expectJsonHeaders(res);
    expect(backend.calls).toEqual([]);
  });

  it.each([
    '/_supervisor/api',
    '/_supervisor/api/',
    '/_supervisor/api/nope',
    '/_supervisor/api/apps/',
    '/_supervisor/api/apps/blog/restart',
    '/_supervisor/api/apps/blog/history/more',
    '/_supervisor/api/apps/%E0%A4%A',
  ])('unknown admin route %s -> 404 NOT_FOUND', async (path) => {
    const res = await rawRequest(srv.port, path, { headers: AUTH });
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('a backend failure is a 500 without details, and is logged', async () => {
    backend.listOverride = () => Promise.reject(new Error('secret detail'));
    const res = await get('/_supervisor/api/apps', { headers: AUTH });
    expect(res.status).toBe(500);
    expectJsonHeaders(res);
    const body = await res.text();
    expect(body).not.toContain('secret detail');
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'INTERNAL' } });
    expect(log.lines).toMatchObject([{ level: 'error', obj: { path: '/_supervisor/api/apps' } }]);
  });
});

describe('admin UI files (no auth)', () => {
  it('/_supervisor redirects to /_supervisor/ with 308', async () => {
    const res = await get('/_supervisor');
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe('/_supervisor/');
  });

  it.each(['/_supervisor/', '/_supervisor/index.html'])(
    '%s serves index.html with the UI headers',
    async (path) => {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'self'(;|$)/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(await res.text()).toBe('<!doctype html><title>test ui</title>');
    },
  );

  it.each([
    ['/_supervisor/app.js', 'text/javascript; charset=utf-8', 'export {};'],
    ['/_supervisor/style.css', 'text/css; charset=utf-8', 'body{}'],
    ['/_supervisor/sub/icon.svg', 'image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg"/>'],
  ])('%s is served as %s', async (path, type, body) => {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(type);
    expect(await res.text()).toBe(body);
  });

  it('answers HEAD without a body and 304 for a matching ETag', async () => {
    const head = await rawRequest(srv.port, '/_supervisor/app.js', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    const etag = head.headers.etag!;
    expect(etag).toBeTruthy();
    const again = await rawRequest(srv.port, '/_supervisor/app.js', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });

  it('serves the vendored browser libraries from their npm packages, and nothing else of them', async () => {
    const uplot = await get('/_supervisor/vendor/uplot/uPlot.esm.js');
    expect(uplot.status).toBe(200);
    expect(uplot.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(uplot.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await uplot.text()).toContain('uPlot');
    expect((await get('/_supervisor/vendor/uplot/uPlot.min.css')).headers.get('content-type')).toBe(
      'text/css; charset=utf-8',
    );
    const virtual = await get('/_supervisor/vendor/virtual-core/index.js');
    expect(virtual.status).toBe(200);
    // Built for bundlers, served as a production bundle has it: a browser has no `process`.
    const source = await virtual.text();
    expect(source).toContain('class Virtualizer');
    expect(source).not.toContain('process.env');
    expect(Number(virtual.headers.get('content-length'))).toBe(Buffer.byteLength(source));
    for (const path of [
      '/_supervisor/vendor/uplot/../package.json',
      '/_supervisor/vendor/uplot/..%2fpackage.json',
      '/_supervisor/vendor/pg/index.js',
      '/_supervisor/vendor/',
      '/_supervisor/vendor',
    ]) {
      expect((await rawRequest(srv.port, path)).status, path).toBe(404);
    }
    expect((await get('/_supervisor/vendor/uplot/uPlot.esm.js', { method: 'POST' })).status).toBe(405);
  });

  it('POST to a UI file -> 405', async () => {
    const res = await get('/_supervisor/app.js', { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it.each([
    '/_supervisor/../package.json',
    '/_supervisor/%2e%2e/package.json',
    '/_supervisor/%2E%2E/secret.txt',
    '/_supervisor/ui/../../x',
    '/_supervisor/sub/../../secret.txt',
    '/_supervisor/..%2fsecret.txt',
    '/_supervisor/sub/..%2f..%2fsecret.txt',
    '/_supervisor/sub%2f..%2f..%2fsecret.txt',
    '/_supervisor/..%5csecret.txt',
    '/_supervisor/./index.html',
    '/_supervisor//index.html',
    '/_supervisor/.hidden',
    '/_supervisor/link.txt',
    '/_supervisor/sub',
    '/_supervisor/sub/',
    '/_supervisor/index.html%00.js',
    '/_supervisor/%E0%A4%A',
    '/_supervisor/nope.js',
    '/_supervisor/healthz/',
    '/_supervisorx',
  ])('%s -> 404 NOT_FOUND', async (path) => {
    const res = await rawRequest(srv.port, path);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'NOT_FOUND', message: 'no such route' } });
    expect(res.body).not.toContain('outside');
  });

  it('serves the shipped placeholder page by default', async () => {
    const own = createSupervisorHandler({
      backend,
      token: TOKEN,
      metrics: createMetrics(undefined, { defaultMetrics: false }),
      log,
    });
    const other = await listen(own);
    try {
      const res = await fetch(`${other.base}/_supervisor/`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('appvisor admin');
    } finally {
      await other.close();
    }
  });
});
