import http from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppFigures } from '../../src/serve/app-figures.js';
import {
  deferred,
  echoHandler,
  FakeApps,
  type Running,
  request,
  slowHandler,
  startGateway,
} from './fake-apps.js';

let running: Running | undefined;

afterEach(async () => {
  await running?.gateway.close({ graceMs: 100 });
  running = undefined;
});

async function start(apps: FakeApps, options: Parameters<typeof startGateway>[1] = {}): Promise<Running> {
  running = await startGateway(apps, options);
  return running;
}

describe('routing over HTTP', () => {
  it('strips the prefix, keeps the query and sets X-Forwarded-Prefix (replacing a client one)', async () => {
    const { port } = await start(new FakeApps().add('crm'));
    const answer = await request(port, '/apps/crm/api/info?x=1', {
      headers: { 'X-Forwarded-Prefix': '/evil' },
    });
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({
      app: 'crm',
      url: '/api/info?x=1',
      prefix: '/apps/crm',
      rawPrefixes: ['/apps/crm'],
    });
  });

  it('serves the main app with the original path and no client-supplied prefix', async () => {
    const { port } = await start(new FakeApps().add('crm'));
    const answer = await request(port, '/some/page?app=crm', {
      headers: { 'X-Forwarded-Prefix': '/apps/crm', 'X-App': 'crm', 'X-Forwarded-Host': 'crm.example.com' },
    });
    expect(answer.json()).toEqual({ app: 'main', url: '/some/page?app=crm', prefix: null, rawPrefixes: [] });
  });

  it('serves an app at the root of its exact domain, without a prefix', async () => {
    const { port } = await start(new FakeApps().add('crm', { domains: ['crm.example.com'] }));
    const answer = await request(port, '/api/info', {
      headers: { Host: 'CRM.example.com.:8080', 'X-Forwarded-Prefix': '/x' },
    });
    expect(answer.json()).toEqual({ app: 'crm', url: '/api/info', prefix: null, rawPrefixes: [] });
  });

  it('sends an unknown Host to the main app, never to a sub-app', async () => {
    const { port } = await start(new FakeApps().add('crm', { domains: ['crm.example.com'] }));
    for (const host of ['evil.example', 'www.crm.example.com', 'crm.example.com.evil']) {
      expect((await request(port, '/api/info', { headers: { Host: host } })).json()).toMatchObject({
        app: 'main',
      });
    }
  });

  it('redirects /apps/<name> with 308, keeping the query', async () => {
    const { port } = await start(new FakeApps().add('crm'));
    const answer = await request(port, '/apps/crm?a=1&b=2');
    expect(answer.status).toBe(308);
    expect(answer.headers.location).toBe('/apps/crm/?a=1&b=2');
  });

  it("gives /_supervisor/ to the supervisor, except on an app's domain, where every path is the app's", async () => {
    const { port, supervisorCalls } = await start(
      new FakeApps().add('crm', { domains: ['crm.example.com'] }),
    );
    const answer = await request(port, '/_supervisor/healthz', { headers: { Host: 'localhost:13000' } });
    expect(answer.json()).toEqual({ supervisor: '/healthz' });
    for (const path of ['/_supervisor/metrics', '/_supervisor/', '/_supervisor']) {
      const onDomain = await request(port, path, { headers: { Host: 'CRM.example.com:8080' } });
      expect(onDomain.json()).toMatchObject({ app: 'crm', url: path });
    }
    expect(supervisorCalls).toEqual(['/healthz']);
  });

  it('answers /_supervisor/ only on the supervisor hosts when they are set; elsewhere it is the main app', async () => {
    const { port, supervisorCalls } = await start(
      new FakeApps().add('crm', { domains: ['crm.example.com'] }),
      { supervisorHosts: ['Admin.Example.com', '127.0.0.1'] },
    );
    const admin = await request(port, '/_supervisor/metrics', {
      headers: { Host: 'admin.example.com:8443' },
    });
    expect(admin.json()).toEqual({ supervisor: '/metrics' });
    expect((await request(port, '/_supervisor/healthz')).json()).toEqual({ supervisor: '/healthz' });
    const other = await request(port, '/_supervisor/metrics', { headers: { Host: 'www.example.com' } });
    expect(other.json()).toMatchObject({ app: 'main', url: '/_supervisor/metrics' });
    const domain = await request(port, '/_supervisor/', { headers: { Host: 'crm.example.com' } });
    expect(domain.json()).toMatchObject({ app: 'crm', url: '/_supervisor/' });
    expect(supervisorCalls).toEqual(['/metrics', '/healthz']);
  });

  it.each([
    '/apps/../_supervisor/api/apps',
    '/apps/%2e%2e/',
    '/apps/%2E%2E/x',
    '/apps/%2e%2e/_supervisor/api/apps',
    '/apps/crm%2F..%2F/',
    '/apps/crm%2F..%2Fsupport/',
    '/apps/%252e%252e/_supervisor/api/apps',
    '/apps/crm%252F..%252F/',
    '/apps/..\\_supervisor/api/apps',
    '/apps/crm\\..\\support/',
  ])('never escapes through %s (404 APP_NOT_FOUND)', async (path) => {
    const { port, supervisorCalls } = await start(new FakeApps().add('crm').add('support'));
    const answer = await request(port, path);
    expect(answer.status).toBe(404);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.json<{ error: { code: string } }>().error.code).toBe('APP_NOT_FOUND');
    expect(supervisorCalls).toEqual([]);
  });

  it('keeps dot segments after a valid name inside that app', async () => {
    const { port, supervisorCalls } = await start(new FakeApps().add('crm'));
    const answer = await request(port, '/apps/crm/../../_supervisor/api/apps');
    expect(answer.json()).toMatchObject({ app: 'crm', url: '/../../_supervisor/api/apps' });
    expect(supervisorCalls).toEqual([]);
  });
});

describe('errors', () => {
  it.each([
    ['an unknown app', '/apps/nope/x', 404, 'APP_NOT_FOUND', 'no app named nope', 'nope'],
    ['the reserved name main', '/apps/main/', 404, 'APP_NOT_FOUND', 'no app named main', 'main'],
    ['a disabled app', '/apps/off/', 503, 'APP_DISABLED', 'app off is disabled', 'off'],
    [
      'an app needing an upgrade',
      '/apps/old/api/info',
      503,
      'APP_NEEDS_UPGRADE',
      'app old has data version 1 but the code is at 2; set upgrade: true to migrate',
      'old',
    ],
    ['an app in error', '/apps/broken/', 503, 'APP_ERROR', 'app broken failed: create() threw', 'broken'],
    [
      'a foreign error from acquire',
      '/apps/weird/',
      503,
      'APP_ERROR',
      'app weird failed: socket gone',
      'weird',
    ],
  ])('answers %s with JSON', async (_label, path, status, code, message, app) => {
    const apps = new FakeApps()
      .add('off', { fail: { code: 'APP_DISABLED' } })
      .add('old', { fail: { code: 'APP_NEEDS_UPGRADE', params: { dataVersion: 1, codeVersion: 2 } } })
      .add('broken', { fail: { code: 'APP_ERROR', params: { detail: 'create() threw' } } })
      .add('weird', { fail: new Error('socket gone') });
    const { port } = await start(apps);
    const answer = await request(port, path);
    expect(answer.status).toBe(status);
    expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
    // An app needing an upgrade may be served by another replica (a rolling upgrade): retry there.
    expect(answer.headers['retry-after']).toBe(code === 'APP_NEEDS_UPGRADE' ? '1' : undefined);
    expect(answer.json()).toEqual({ error: { code, message, app } });
  });
});

describe('before the first reconcile', () => {
  it('answers an unknown app 503 APP_STARTING with Retry-After (it may not be routed yet), then 404', async () => {
    let routed = false;
    const apps = Object.assign(new FakeApps(), { routed: () => routed });
    const { port } = await start(apps);
    const early = await request(port, '/apps/crm/api/info');
    expect(early.status).toBe(503);
    expect(early.headers['retry-after']).toBe('1');
    expect(early.json<{ error: { code: string } }>().error.code).toBe('APP_STARTING');
    routed = true;
    const later = await request(port, '/apps/crm/api/info');
    expect(later.status).toBe(404);
    expect(later.json<{ error: { code: string } }>().error.code).toBe('APP_NOT_FOUND');
  });
});

describe('lazy start', () => {
  it('starts once for 1000 concurrent first requests, and all of them get 200', async () => {
    const gate = deferred();
    const apps = new FakeApps().add('lazy', { start: () => gate.promise });
    const { port, gateway } = await start(apps);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    try {
      const answers = Array.from({ length: 1000 }, () => request(port, '/apps/lazy/api/info', { agent }));
      await vi.waitFor(() => expect(gateway.inFlight).toBe(50), { timeout: 10_000, interval: 5 });
      expect(apps.starts('lazy')).toBe(1);
      gate.resolve();
      const statuses = (await Promise.all(answers)).map((a) => a.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1000);
      expect(apps.starts('lazy')).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('answers 503 APP_STARTING with Retry-After after the timeout, and keeps the start going', async () => {
    const gate = deferred();
    const apps = new FakeApps().add('slow', { start: () => gate.promise });
    const { port } = await start(apps, { startTimeoutMs: 150, retryAfterSeconds: 2 });

    const first = await request(port, '/apps/slow/x');
    expect(first.status).toBe(503);
    expect(first.headers['retry-after']).toBe('2');
    expect(first.json()).toEqual({
      error: { code: 'APP_STARTING', message: 'app slow is starting; retry shortly', app: 'slow' },
    });
    // A visitor arriving while the start still runs joins it rather than starting again.
    const second = request(port, '/apps/slow/y');
    gate.resolve();
    expect((await second).json()).toMatchObject({ app: 'slow', url: '/y' });
    expect((await request(port, '/apps/slow/z')).status).toBe(200);
    expect(apps.starts('slow')).toBe(1);
  });

  it('retries a failed acquire on the next request instead of caching the failure', async () => {
    let attempts = 0;
    const apps = new FakeApps().add('flaky', {
      start: async () => {
        attempts++;
        if (attempts === 1) throw new Error('first start failed');
      },
    });
    const { port } = await start(apps);
    expect((await request(port, '/apps/flaky/')).status).toBe(503);
    expect((await request(port, '/apps/flaky/')).status).toBe(200);
    expect(attempts).toBe(2);
  });
});

describe('a failing handler only fails its own request', () => {
  function boomApps(calmRelease: Promise<void>, calmArrived: () => void): FakeApps {
    return new FakeApps().add('calm', { handler: slowHandler(calmRelease, calmArrived) }).add('boom', {
      handler: (req, res) => {
        switch (req.url) {
          case '/throw':
            res.setHeader('x-leak', 'yes');
            throw new Error('sync boom');
          case '/reject':
            return Promise.reject(new Error('async boom'));
          case '/emit':
            res.emit('error', new Error('emitted boom'));
            return;
          case '/write-after-end':
            res.end('done');
            res.write('more');
            return;
          case '/partial':
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write('partial');
            return Promise.reject(new Error('late boom'));
          default:
            return echoHandler('boom')(req, res);
        }
      },
    });
  }

  it('answers 500 APP_HANDLER_FAILED while another app serves concurrent requests', async () => {
    const release = deferred();
    let arrived = 0;
    const apps = boomApps(release.promise, () => arrived++);
    const { port, logs } = await start(apps);
    const calm = Array.from({ length: 20 }, () => request(port, '/apps/calm/x'));
    await vi.waitFor(() => expect(arrived).toBe(20), { timeout: 5_000, interval: 5 });
    const failures = await Promise.all(
      ['/throw', '/reject', '/emit'].flatMap((p) =>
        Array.from({ length: 5 }, () => request(port, `/apps/boom${p}`)),
      ),
    );
    for (const failure of failures) {
      expect(failure.status).toBe(500);
      expect(failure.headers['x-leak']).toBeUndefined();
      expect(failure.json()).toEqual({
        error: { code: 'APP_HANDLER_FAILED', message: 'app boom failed to handle the request', app: 'boom' },
      });
    }
    release.resolve();
    for (const answer of await Promise.all(calm)) expect(answer.body).toBe('slow done');
    expect((await request(port, '/apps/boom/fine')).json()).toMatchObject({ app: 'boom', url: '/fine' });
    expect(logs.filter((l) => l.msg === 'app handler failed').every((l) => l.app === 'boom')).toBe(true);
    expect(logs.filter((l) => l.msg === 'app handler failed')).toHaveLength(15);
  });

  it('survives a write after end, and cuts a response that failed half-way', async () => {
    const { port, logs } = await start(boomApps(Promise.resolve(), () => {}));
    expect((await request(port, '/apps/boom/write-after-end')).body).toBe('done');
    await expect(request(port, '/apps/boom/partial')).rejects.toThrow();
    expect((await request(port, '/apps/boom/fine')).status).toBe(200);
    expect((await request(port, '/apps/calm/')).body).toBe('slow done');
    await vi.waitFor(() => expect(logs.filter((l) => l.msg === 'app handler failed')).toHaveLength(2));
  });

  it('answers 500 when the supervisor handler throws', async () => {
    const { port } = await start(new FakeApps(), {
      supervisor: () => {
        throw new Error('admin bug');
      },
    });
    const answer = await request(port, '/_supervisor/api/apps');
    expect(answer.status).toBe(500);
    expect(answer.json<{ error: { code: string } }>().error.code).toBe('APP_HANDLER_FAILED');
  });
});

describe('metrics', () => {
  it('counts requests per app with status and duration, but not unknown names', async () => {
    const apps = new FakeApps().add('crm').add('off', { fail: { code: 'APP_DISABLED' } });
    const { port } = await start(apps);
    await request(port, '/apps/crm/');
    await request(port, '/apps/off/');
    await request(port, '/');
    await request(port, '/apps/nope/');
    await request(port, '/_supervisor/healthz');
    await vi.waitFor(() => expect(apps.requests).toHaveLength(3));
    expect(apps.requests.map(({ app, status }) => [app, status])).toEqual([
      ['crm', 200],
      ['off', 503],
      ['main', 200],
    ]);
    for (const { durationMs } of apps.requests) expect(durationMs).toBeGreaterThanOrEqual(0);
  });
});

describe('traffic for live figures', () => {
  /** A clock standing 10 s into a one-minute slot: a rate there is the count over 10 s. */
  const tenSecondsIn = () => 20_000_000 * 60_000 + 10_000;

  it('tells the observer of each app request, main included, with its status; none for the rest', async () => {
    const figures = new AppFigures({ stepSeconds: 60, slots: 2, now: tenSecondsIn });
    const apps = new FakeApps().add('crm').add('off', { fail: { code: 'APP_DISABLED' } });
    const { port } = await start(apps, { traffic: figures });
    await request(port, '/apps/crm/');
    await request(port, '/apps/crm/');
    await request(port, '/apps/off/');
    await request(port, '/');
    await request(port, '/apps/nope/');
    await request(port, '/_supervisor/healthz');
    const count = (app: string) => figures.summary([app]).apps[app]!.rps.at(-1)! * 10;
    await vi.waitFor(() => expect(count('main')).toBe(1));
    expect([...figures.current()].map((c) => c.app).sort()).toEqual(['crm', 'main', 'off']);
    expect(count('crm')).toBe(2);
    expect(count('off')).toBe(1);
    expect(figures.summary(['off']).apps.off!.errorRate.at(-1)).toBe(1);
    expect(figures.series('crm').points.at(-1)!.p50Ms).not.toBeNull();
  });

  it('counts a request as open until its response closes', async () => {
    const figures = new AppFigures({ stepSeconds: 3600, slots: 2 });
    const gate = deferred();
    const apps = new FakeApps().add('slow', { handler: slowHandler(gate.promise) });
    const { port } = await start(apps, { traffic: figures });
    const pending = request(port, '/apps/slow/');
    await vi.waitFor(() => expect([...figures.current()][0]?.openConnections).toBe(1));
    gate.resolve();
    await pending;
    await vi.waitFor(() => expect([...figures.current()][0]?.openConnections).toBe(0));
    expect(figures.series('slow').points.at(-1)!.openConnections).toBe(1);
  });
});
