import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { codeClass, createMetrics } from '../../src/admin/metrics.js';
import { AppFigures } from '../../src/serve/app-figures.js';
import { appView, FakeBackend, replicaView } from './fakes.js';

// Values as Prometheus reads them (Go's ParseFloat: NaN and Inf in any case; prom-client prints `Nan`).
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.eE+-]+|[Nn][Aa][Nn]|[+-]Inf)$/;

/** Checks every line is a comment or a sample, and returns the samples by series. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    expect(line).toMatch(SAMPLE);
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

describe('codeClass', () => {
  it.each([
    [101, '1xx'],
    [200, '2xx'],
    [204, '2xx'],
    [308, '3xx'],
    [404, '4xx'],
    [503, '5xx'],
    [0, 'other'],
    [600, 'other'],
    [Number.NaN, 'other'],
  ])('%s -> %s', (status, expected) => {
    expect(codeClass(status)).toBe(expected);
  });
});

describe('createMetrics', () => {
  it('exposes the SPEC metrics and default process metrics in parseable text', async () => {
    const metrics = createMetrics(new FakeBackend([]));
    const { contentType, body } = await metrics.render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    parse(body);
    for (const name of [
      'appvisor_apps',
      'appvisor_reconciles_total',
      'appvisor_reconcile_failures_total',
      'appvisor_reconcile_duration_seconds',
      'appvisor_app_start_duration_seconds',
      'appvisor_requests_total',
      'appvisor_request_duration_seconds',
      'appvisor_event_loop_blocked_total',
      'appvisor_event_loop_blocked_seconds_total',
      'process_cpu_user_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(body).toContain(`# TYPE ${name} `);
    }
    metrics.close();
  });

  it('counts live replicas, says whether this one leads, and counts its drifted apps', async () => {
    const backend = new FakeBackend([]);
    const metrics = createMetrics(backend, { defaultMetrics: false });
    backend.replicas = [
      replicaView('a', { self: true, drift: ['blog', 'crm'] }),
      replicaView('b', { leader: true }),
      replicaView('c', { live: false }),
    ];
    let samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_replicas')).toBe(2);
    expect(samples.get('appvisor_leader')).toBe(0);
    expect(samples.get('appvisor_drift_apps')).toBe(2);

    backend.replicas = [replicaView('a', { self: true, leader: true })];
    samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_replicas')).toBe(1);
    expect(samples.get('appvisor_leader')).toBe(1);
    expect(samples.get('appvisor_drift_apps')).toBe(0);
    metrics.close();
  });

  it('collects every prom-client default metric but the GC durations (their observer costs each request)', async () => {
    const names = async (registry: Registry): Promise<string[]> =>
      (await registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !n.startsWith('appvisor_'));
    const all = new Registry();
    collectDefaultMetrics({ register: all });
    const metrics = createMetrics();
    const ours = await names(metrics.registry);
    expect(ours.length).toBeGreaterThan(10);
    expect((await names(all)).filter((n) => !ours.includes(n))).toEqual(['nodejs_gc_duration_seconds']);
    metrics.close();
  });

  it('leaves default metrics out when asked', async () => {
    const { body } = await createMetrics(undefined, { defaultMetrics: false }).render();
    expect(body).not.toContain('process_cpu_user_seconds_total');
    expect(body).toContain('appvisor_apps');
  });

  it('uses a registry of its own', async () => {
    const a = createMetrics(undefined, { defaultMetrics: false });
    const b = createMetrics(undefined, { defaultMetrics: false });
    a.observeRequest('x', 200, 5);
    expect(
      parse((await b.render()).body).get('appvisor_requests_total{app="x",code_class="2xx"}'),
    ).toBeUndefined();
    const { register } = await import('prom-client');
    expect(await register.getSingleMetric('appvisor_requests_total')).toBeUndefined();
  });

  it('counts requests per app and status class, with durations in seconds', async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    metrics.observeRequest('blog', 200, 3);
    metrics.observeRequest('blog', 201, 7);
    metrics.observeRequest('blog', 503, 40);
    metrics.observeRequest('shop', 404, 1);
    const samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_requests_total{app="blog",code_class="2xx"}')).toBe(2);
    expect(samples.get('appvisor_requests_total{app="blog",code_class="5xx"}')).toBe(1);
    expect(samples.get('appvisor_requests_total{app="shop",code_class="4xx"}')).toBe(1);
    expect(samples.get('appvisor_request_duration_seconds_count{app="blog"}')).toBe(3);
    expect(samples.get('appvisor_request_duration_seconds_sum{app="blog"}')).toBeCloseTo(0.05);
    expect(samples.get('appvisor_request_duration_seconds_bucket{le="0.005",app="blog"}')).toBe(1);
  });

  it('caps distinct app labels; later apps are counted as other', async () => {
    const metrics = createMetrics(undefined, { defaultMetrics: false, maxAppLabels: 2 });
    for (const app of ['a', 'b', 'c', 'd', 'a']) metrics.observeRequest(app, 200, 1);
    const samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_requests_total{app="a",code_class="2xx"}')).toBe(2);
    expect(samples.get('appvisor_requests_total{app="b",code_class="2xx"}')).toBe(1);
    expect(samples.get('appvisor_requests_total{app="other",code_class="2xx"}')).toBe(2);
    expect(samples.has('appvisor_requests_total{app="c",code_class="2xx"}')).toBe(false);
  });

  it('counts the blocks of the event loop by the app named, capped like the request labels, until closed', async () => {
    const backend = new FakeBackend([]);
    const metrics = createMetrics(backend, { defaultMetrics: false, maxAppLabels: 2 });
    let samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_event_loop_blocked_total{app=""}')).toBe(0);
    backend.events.emit('loopBlocked', { app: 'spinner', ms: 1_500 });
    backend.events.emit('loopBlocked', { app: 'spinner', ms: 2_000 });
    backend.events.emit('loopBlocked', { app: undefined, ms: 1_200 });
    backend.events.emit('loopBlocked', { app: 'third', ms: 1_100 });
    samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_event_loop_blocked_total{app="spinner"}')).toBe(2);
    expect(samples.get('appvisor_event_loop_blocked_seconds_total{app="spinner"}')).toBeCloseTo(3.5);
    expect(samples.get('appvisor_event_loop_blocked_total{app=""}')).toBe(1);
    expect(samples.get('appvisor_event_loop_blocked_total{app="other"}')).toBe(1);
    expect(samples.has('appvisor_event_loop_blocked_total{app="third"}')).toBe(false);

    metrics.close();
    expect(backend.events.listenerCount('loopBlocked')).toBe(0);
  });

  it('names the same apps in every per-app metric: one cap for the whole scrape', async () => {
    const backend = new FakeBackend([]);
    const figures = new AppFigures();
    const metrics = createMetrics(backend, { defaultMetrics: false, maxAppLabels: 2, live: figures });
    metrics.observeRequest('a', 200, 1);
    backend.events.emit('loopBlocked', { app: 'b', ms: 1_500 });
    // c comes third, whichever metric sees it: past the cap in all of them.
    metrics.observeRequest('c', 200, 1);
    backend.events.emit('loopBlocked', { app: 'c', ms: 1_500 });
    figures.opened('c');
    // a and b keep their names in the metrics that see them later.
    backend.events.emit('loopBlocked', { app: 'a', ms: 1_500 });
    metrics.observeRequest('b', 500, 1);
    const samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_requests_total{app="a",code_class="2xx"}')).toBe(1);
    expect(samples.get('appvisor_requests_total{app="b",code_class="5xx"}')).toBe(1);
    expect(samples.get('appvisor_requests_total{app="other",code_class="2xx"}')).toBe(1);
    expect(samples.get('appvisor_event_loop_blocked_total{app="a"}')).toBe(1);
    expect(samples.get('appvisor_event_loop_blocked_total{app="b"}')).toBe(1);
    expect(samples.get('appvisor_event_loop_blocked_total{app="other"}')).toBe(1);
    expect(samples.get('appvisor_open_connections{app="other"}')).toBe(1);
    const apps = new Set(
      [...samples.keys()].map((k) => /app="([^"]*)"/.exec(k)?.[1]).filter((a) => a !== undefined),
    );
    expect([...apps].sort()).toEqual(['', 'a', 'b', 'other']);
    metrics.close();
  });

  it('counts apps by status on each scrape, every status present', async () => {
    const backend = new FakeBackend([
      appView('a', { status: 'running' }),
      appView('b', { status: 'running' }),
      appView('c', { status: 'error' }),
    ]);
    const metrics = createMetrics(backend, { defaultMetrics: false });
    let samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_apps{status="running"}')).toBe(2);
    expect(samples.get('appvisor_apps{status="error"}')).toBe(1);
    expect(samples.get('appvisor_apps{status="orphaned"}')).toBe(0);

    backend.apps.set('c', appView('c', { status: 'running' }));
    samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_apps{status="running"}')).toBe(3);
    expect(samples.get('appvisor_apps{status="error"}')).toBe(0);
  });

  it('falls back to the last statuses seen when listApps fails', async () => {
    const backend = new FakeBackend([appView('a', { status: 'running' })]);
    const metrics = createMetrics(backend, { defaultMetrics: false });
    await metrics.render();
    backend.listOverride = () => Promise.reject(new Error('store down'));
    backend.events.emit('status', { app: 'a', status: 'stopped', previous: 'running', error: null, at: '' });
    const samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_apps{status="stopped"}')).toBe(1);
    expect(samples.get('appvisor_apps{status="running"}')).toBe(0);
  });

  it('observes reconcile and start events from the backend until closed', async () => {
    const backend = new FakeBackend([]);
    const before = backend.events.listenerCount('reconcile');
    const metrics = createMetrics(backend, { defaultMetrics: false });
    backend.events.emit('reconcile', { app: 'a', outcome: 'ok', durationMs: 20 });
    backend.events.emit('reconcile', { app: 'a', outcome: 'retry', durationMs: 30 });
    backend.events.emit('reconcile', { app: 'b', outcome: 'terminal', durationMs: 50 });
    backend.events.emit('start', { app: 'a', ok: true, durationMs: 12 });
    backend.events.emit('start', { app: 'b', ok: false, durationMs: 30_000 });
    let samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_reconciles_total{outcome="ok"}')).toBe(1);
    expect(samples.get('appvisor_reconciles_total{outcome="retry"}')).toBe(1);
    expect(samples.get('appvisor_reconciles_total{outcome="terminal"}')).toBe(1);
    expect(samples.get('appvisor_reconcile_failures_total')).toBe(2);
    expect(samples.get('appvisor_reconcile_duration_seconds_sum')).toBeCloseTo(0.1);
    expect(samples.get('appvisor_app_start_duration_seconds_count{outcome="ok"}')).toBe(1);
    expect(samples.get('appvisor_app_start_duration_seconds_count{outcome="failed"}')).toBe(1);

    metrics.close();
    expect(backend.events.listenerCount('reconcile')).toBe(before);
    expect(backend.events.listenerCount('start')).toBe(0);
    expect(backend.events.listenerCount('status')).toBe(0);
    backend.events.emit('reconcile', { app: 'a', outcome: 'ok', durationMs: 20 });
    samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_reconciles_total{outcome="ok"}')).toBe(1);
  });
});

describe('live figures per app', () => {
  it('exports open connections and isolated memory per app, the apps past the label cap as other', async () => {
    const figures = new AppFigures();
    const chat = figures.opened('chat')!;
    figures.opened('chat');
    const b = figures.opened('blog')!;
    figures.answered(b, 200, 1);
    figures.memory('shop', 64);
    figures.opened('x1');
    figures.opened('x2');
    figures.memory('x2', 10);
    figures.memory('x3', 20);
    const metrics = createMetrics(new FakeBackend([]), {
      maxAppLabels: 3,
      defaultMetrics: false,
      live: figures,
    });
    const samples = parse((await metrics.render()).body);
    expect(samples.get('appvisor_open_connections{app="chat"}')).toBe(2);
    expect(samples.get('appvisor_open_connections{app="blog"}')).toBe(0);
    expect(samples.get('appvisor_open_connections{app="shop"}')).toBe(0);
    expect(samples.get('appvisor_open_connections{app="other"}')).toBe(2);
    expect(samples.has('appvisor_open_connections{app="x1"}')).toBe(false);
    expect(samples.get('appvisor_app_memory_bytes{app="shop"}')).toBe(64 * 1024 * 1024);
    expect(samples.get('appvisor_app_memory_bytes{app="other"}')).toBe(30 * 1024 * 1024);
    // Shared apps report no memory.
    expect(samples.has('appvisor_app_memory_bytes{app="chat"}')).toBe(false);
    const labels = [...samples.keys()].filter((k) => k.startsWith('appvisor_open_connections'));
    expect(labels).toHaveLength(4);

    // A closed socket shows 0 on the next scrape.
    figures.released(chat);
    expect(parse((await metrics.render()).body).get('appvisor_open_connections{app="chat"}')).toBe(1);
    metrics.close();
  });

  it('exports neither without a source', async () => {
    const metrics = createMetrics(new FakeBackend([]), { defaultMetrics: false });
    const { body } = await metrics.render();
    expect(body).not.toContain('appvisor_open_connections');
    expect(body).not.toContain('appvisor_app_memory_bytes');
    metrics.close();
  });
});
