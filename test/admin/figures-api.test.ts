/**
 * The figures routes (GET /_supervisor/api/apps/<name>/figures and /_supervisor/api/figures) on
 * the admin handler with a fake backend and real AppFigures on an injected clock.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_FIGURE_APPS } from '../../src/admin/figures-api.js';
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
