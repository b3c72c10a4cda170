/**
 * Live figures end to end: a real serve with a shared and a worker-isolated app; requests sent
 * through the gateway show in the figures routes and in /_supervisor/metrics, the isolated
 * app's memory too.
 */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FigurePoint } from '../../src/serve/app-figures.js';
import { manifest, type Serve, startServe, waitFor } from './harness.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/isolation-app.ts', import.meta.url));

let serve: Serve;

beforeAll(async () => {
  serve = await startServe({
    app: FIXTURE,
    manifests: {
      'shared.yaml': manifest('figshared', 'startMode: with-main\n'),
      'worker.yaml': manifest('figworker', 'startMode: with-main\nisolation:\n  mode: worker\n'),
      'off.yaml': manifest('figoff', 'enabled: false\n'),
    },
  });
}, 60_000);

afterAll(async () => {
  await serve?.close();
  if (serve) await fs.rm(serve.dir, { recursive: true, force: true });
});

async function latest(app: string): Promise<FigurePoint> {
  const answer = await serve.admin(`/apps/${app}/figures`);
  expect(answer.status, answer.text).toBe(200);
  expect(answer.body.app).toBe(app);
  return answer.body.points.at(-1) as FigurePoint;
}

describe('live figures in serve', () => {
  it("counts the gateway's requests per app, 5xx apart, with latency", async () => {
    for (let i = 0; i < 9; i++) expect((await serve.request('/apps/figshared/hello')).status).toBe(200);
    expect((await serve.request('/apps/figshared/nowhere')).status).toBe(404);
    // The gateway's own answer for an app counts as the app's: 503 APP_DISABLED.
    expect((await serve.request('/apps/figoff/')).status).toBe(503);
    // Within one minute slot, or across two: the newest slot holds the last request at least.
    const point = await latest('figshared');
    expect(point.rps).toBeGreaterThan(0);
    expect(point.p50Ms).not.toBeNull();
    expect('memoryMb' in point).toBe(false);
    const summary = await serve.admin('/figures?apps=figshared,figoff');
    expect(summary.status).toBe(200);
    const { figshared, figoff } = summary.body.apps;
    expect(figshared.rps.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThan(0);
    // A 404 is no server error; the 503 is.
    expect(Math.max(...figshared.errorRate)).toBe(0);
    expect(Math.max(...figoff.errorRate)).toBe(1);
    expect((await serve.admin('/apps/nope/figures')).body.error.code).toBe('APP_NOT_FOUND');
  });

  it("shows a worker-isolated app's memory, and both figures in /_supervisor/metrics", async () => {
    expect((await serve.request('/apps/figworker/hello')).status).toBe(200);
    const point = await waitFor(async () => {
      const p = await latest('figworker');
      return typeof p.memoryMb === 'number' && p.memoryMb > 0 ? p : undefined;
    }, "the worker's memory report");
    expect(point.memoryMb).toBeGreaterThan(1);
    const metrics = await serve.request('/_supervisor/metrics');
    expect(metrics.text).toMatch(/^appvisor_open_connections\{app="figshared"\} 0$/m);
    expect(metrics.text).toMatch(/^appvisor_app_memory_bytes\{app="figworker"\} [1-9]\d+$/m);
    expect(metrics.text).not.toMatch(/^appvisor_app_memory_bytes\{app="figshared"\}/m);
  });
});

describe('settings metrics.maxAppLabels', () => {
  it('bounds the per-app labels of /_supervisor/metrics: the first apps keep their name, the rest are other', async () => {
    const capped = await startServe({
      app: FIXTURE,
      settings: { metrics: { maxAppLabels: 1 } },
      manifests: {
        'a.yaml': manifest('capa', 'startMode: with-main\n'),
        'b.yaml': manifest('capb', 'startMode: with-main\n'),
      },
    });
    try {
      expect((await capped.request('/apps/capa/hello')).status).toBe(200);
      expect((await capped.request('/apps/capb/hello')).status).toBe(200);
      const { text } = await capped.request('/_supervisor/metrics');
      expect(text).toMatch(/^appvisor_requests_total\{app="capa",code_class="2xx"\} 1$/m);
      expect(text).toMatch(/^appvisor_requests_total\{app="other",code_class="2xx"\} 1$/m);
      expect(text).not.toContain('app="capb"');
      expect(text).toMatch(/^appvisor_open_connections\{app="other"\} 0$/m);
    } finally {
      await capped.close();
      await fs.rm(capped.dir, { recursive: true, force: true });
    }
  }, 60_000);
});
