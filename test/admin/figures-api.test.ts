/**
 * The figures routes (GET /_supervisor/api/apps/<name>/figures and /_supervisor/api/figures) on
 * the admin handler with a fake backend and real AppFigures on an injected clock; the figures of
 * every live replica against small real HTTP servers standing in for the other replicas.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_FIGURE_APPS } from '../../src/admin/figures-api.js';
import { FORWARDED_HEADER } from '../../src/admin/forward.js';
import { createSupervisorHandler, type SupervisorRoutes } from '../../src/admin/handler.js';
import { createMetrics } from '../../src/admin/metrics.js';
import { AppFigures } from '../../src/serve/app-figures.js';
import { appView, FakeBackend, listen, MemoryLog, rawRequest } from './fakes.js';

const TOKEN = 'test-admin-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** 10 s into a one-minute slot. */
const NOW = 20_000_000 * 60_000 + 10_000;

let backend: FakeBackend;
let handler: SupervisorRoutes;
let srv: Awaited<ReturnType<typeof listen>>;
let figures: AppFigures;

beforeAll(async () => {
  backend = new FakeBackend([]);
  const metrics = createMetrics(backend, { defaultMetrics: false });
  handler = createSupervisorHandler({ backend, token: TOKEN, metrics, log: new MemoryLog() });
  srv = await listen(handler);
});
afterAll(async () => {
  handler.close();
  await srv.close();
});
beforeEach(() => {
  backend.apps.clear();
  backend.apps.set('blog', appView('blog', { status: 'running' }));
  backend.apps.set('shop', appView('shop'));
  figures = new AppFigures({ now: () => NOW });
  backend.figures = figures;
  delete backend.livePeers;
  delete backend.replicaId;
  for (let i = 0; i < 20; i++) figures.answered(figures.opened('blog')!, i < 5 ? 503 : 200, 3);
});

async function get(path: string, headers: Record<string, string> = AUTH) {
  const answer = await rawRequest(srv.port, `/_supervisor/api/${path}`, { headers });
  return { ...answer, json: JSON.parse(answer.body) };
}

describe('GET /_supervisor/api/apps/<name>/figures', () => {
  it("answers the app's last hour, oldest first, the slot under way last", async () => {
    const { status, headers, json } = await get('apps/blog/figures');
    expect(status).toBe(200);
    expect(headers['cache-control']).toBe('no-store');
    expect(json.app).toBe('blog');
    expect(json.stepSeconds).toBe(60);
    expect(json.points).toHaveLength(60);
    const current = json.points.at(-1);
    expect(current.at).toBe(new Date(NOW - 10_000).toISOString());
    expect(current).toMatchObject({ rps: 2, errorRate: 0.25, openConnections: 1 });
    expect(current.p50Ms).toBeGreaterThan(2.5);
    expect(current.p95Ms).toBeLessThanOrEqual(5);
    expect(json.points[0]).toMatchObject({ rps: 0, p50Ms: null, p95Ms: null, errorRate: 0 });
  });

  it('answers zeros for a known app without traffic, and APP_NOT_FOUND for an unknown one', async () => {
    const quiet = await get('apps/shop/figures');
    expect(quiet.status).toBe(200);
    expect(quiet.json.points.every((p: { rps: number }) => p.rps === 0)).toBe(true);
    const unknown = await get('apps/nope/figures');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('APP_NOT_FOUND');
  });

  it('needs a token, and is not found where the backend keeps no figures', async () => {
    expect((await get('apps/blog/figures', {})).status).toBe(401);
    delete backend.figures;
    expect((await get('apps/blog/figures')).status).toBe(404);
    expect((await get('figures?apps=blog')).status).toBe(404);
  });
});

describe('GET /_supervisor/api/figures?apps=…', () => {
  it('answers rps, p95 and error rate per app named, a name without traffic as zeros', async () => {
    const { status, json } = await get('figures?apps=blog,%20ghost,blog');
    expect(status).toBe(200);
    expect(json.stepSeconds).toBe(60);
    expect(Object.keys(json.apps)).toEqual(['blog', 'ghost']);
    expect(json.apps.blog.rps).toHaveLength(60);
    expect(json.apps.blog.rps.at(-1)).toBe(2);
    expect(json.apps.blog.errorRate.at(-1)).toBe(0.25);
    expect(json.apps.blog.p95Ms.at(-1)).toBeGreaterThan(2.5);
    expect(json.apps.ghost.rps.every((v: number) => v === 0)).toBe(true);
  });

  it(`refuses more than ${MAX_FIGURE_APPS} apps, none, and a name that cannot be an app's, saying what to send`, async () => {
    const many = Array.from({ length: MAX_FIGURE_APPS + 1 }, (_, i) => `app${i}`).join(',');
    const tooMany = await get(`figures?apps=${many}`);
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.error.code).toBe('REQUEST_INVALID');
    expect(tooMany.json.error.message).toContain(`at most ${MAX_FIGURE_APPS} apps`);
    const exactly = Array.from({ length: MAX_FIGURE_APPS }, (_, i) => `app${i}`).join(',');
    expect((await get(`figures?apps=${exactly}`)).status).toBe(200);

    const none = await get('figures');
    expect(none.status).toBe(400);
    expect(none.json.error.message).toContain('figures?apps=blog,shop');
    const bad = await get(`figures?apps=blog,${encodeURIComponent('<script>')}`);
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('"<script>" is not an app name');
  });
});

interface StandIn {
  readonly id: string;
  readonly url: string;
  readonly requests: http.IncomingMessage[];
}

const standIns: http.Server[] = [];
afterEach(async () => {
  for (const server of standIns.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/**
 * Another replica's figures routes: `answer` gives the body for a request (undefined: the
 * connection is cut, as a replica gone away).
 */
async function standIn(id: string, answer: (url: URL) => unknown): Promise<StandIn> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    const body = answer(new URL(req.url ?? '/', 'http://x'));
    if (body === undefined) {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  standIns.push(server);
  return { id, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** A replica that answers the raw slots of `peer` (its own AppFigures) as the routes do when forwarded. */
function rawOf(peer: AppFigures) {
  return (url: URL): unknown => {
    const app = /\/apps\/([^/]+)\/figures$/.exec(url.pathname)?.[1];
    if (app !== undefined) return peer.raw(app);
    return peer.rawSummary((url.searchParams.get('apps') ?? '').split(','));
  };
}

describe('the figures of every live replica', () => {
  let other: AppFigures;
  beforeEach(() => {
    // Replica b served 30 more requests of blog in the same minute, 10 of them 500, all slower.
    other = new AppFigures({ now: () => NOW });
    for (let i = 0; i < 30; i++) other.answered(other.opened('blog')!, i < 10 ? 500 : 200, 300);
    backend.replicaId = 'replica-a';
  });

  it("adds up every replica's slots, names those that did not answer, and asks each forwarded with the caller's token", async () => {
    const b = await standIn('replica-b', rawOf(other));
    const gone = await standIn('replica-c', () => undefined);
    // A replica answering the public form (no raw slots) cannot be merged: counted as not answering.
    const older = await standIn('replica-d', () => ({ app: 'blog', stepSeconds: 60, points: [] }));
    backend.livePeers = async () => [b, gone, older];
    const { status, json } = await get('apps/blog/figures');
    expect(status).toBe(200);
    expect(json.replicas).toEqual(['replica-a', 'replica-b']);
    expect(json.unreachable).toEqual(['replica-c', 'replica-d']);
    expect(json.points).toHaveLength(60);
    // 20 here + 30 there, 10 s into the minute; 5 + 10 of them 5xx; one open at a time on each.
    const current = json.points.at(-1);
    expect(current).toMatchObject({ rps: 5, errorRate: 0.3, openConnections: 2 });
    // 40 % of the requests were slow: the p50 of both lies in the slow bucket, the p95 too.
    expect(current.p50Ms).toBeGreaterThan(250);
    expect(current.p95Ms).toBeGreaterThan(250);
    const asked = b.requests[0]!;
    expect(asked.url).toBe('/_supervisor/api/apps/blog/figures');
    expect(asked.headers[FORWARDED_HEADER]).toBe('1');
    expect(asked.headers.authorization).toBe(AUTH.authorization);
  });

  it('answers a forwarded request with its own raw slots, asking nobody on', async () => {
    const b = await standIn('replica-b', rawOf(other));
    backend.livePeers = async () => [b];
    const { status, json } = await get('apps/blog/figures', { ...AUTH, [FORWARDED_HEADER]: '1' });
    expect(status).toBe(200);
    expect(json).toMatchObject({ app: 'blog', stepSeconds: 60, memory: false });
    expect(json.slots).toHaveLength(1);
    expect(json.slots[0]).toMatchObject({ at: NOW - 10_000, count: 20, errors: 5, open: 1 });
    const summary = await get('figures?apps=blog', { ...AUTH, [FORWARDED_HEADER]: '1' });
    expect(summary.json.apps.blog.slots[0].count).toBe(20);
    expect(b.requests).toHaveLength(0);
  });

  it('merges the summary per app and says whose it is', async () => {
    const b = await standIn('replica-b', rawOf(other));
    for (let i = 0; i < 10; i++) other.answered(other.opened('shop')!, 200, 1);
    backend.livePeers = async () => [b];
    const { status, json } = await get('figures?apps=blog,shop');
    expect(status).toBe(200);
    expect(json.replicas).toEqual(['replica-a', 'replica-b']);
    expect(json.unreachable).toEqual([]);
    expect(json.apps.blog.rps.at(-1)).toBe(5);
    expect(json.apps.blog.errorRate.at(-1)).toBe(0.3);
    expect(json.apps.shop.rps.at(-1)).toBe(1);
    expect(new URL(b.requests[0]!.url!, 'http://x').searchParams.get('apps')).toBe('blog,shop');
  });

  it('answers this replica alone where no other is known', async () => {
    const { json } = await get('apps/blog/figures');
    expect(json).toMatchObject({ replicas: ['replica-a'], unreachable: [] });
    expect(json.points.at(-1).rps).toBe(2);
    delete backend.replicaId;
    expect((await get('figures?apps=blog')).json).toMatchObject({ replicas: ['local'], unreachable: [] });
  });
});
