import { Counter, Gauge, Histogram, type Metric, Registry } from 'prom-client';
import type { AppView, ReplicaView, StatusEvent } from '../runtime/view.js';
import { APP_STATUSES, type AppStatus } from '../state/types.js';
import { collectProcessMetrics } from './process-metrics.js';
import type { AdminBackend, AdminEventMap } from './types.js';

type ReconcileEvent = AdminEventMap['reconcile'][0];
type StartEvent = AdminEventMap['start'][0];
type LoopBlockedEvent = AdminEventMap['loopBlocked'][0];

/** Label used for apps beyond the label cap. */
export const OTHER_APP_LABEL = 'other';

/** One app's figures now. */
export interface CurrentAppFigures {
  readonly app: string;
  readonly openConnections: number;
  /** An isolated app's last memory report (MiB); undefined for a shared app. */
  readonly memoryMb: number | undefined;
}

/** What is open per app now, and the memory isolated apps last reported (serve/app-figures.ts). */
export interface LiveAppFigures {
  current(): Iterable<CurrentAppFigures>;
}

export interface MetricsOptions {
  /** Most distinct `app` label values; later apps are counted as `other`. @default 5000 */
  readonly maxAppLabels?: number;
  /** Source of `appvisor_open_connections` and `appvisor_app_memory_bytes` (absent: neither is exported). */
  readonly live?: LiveAppFigures;
  /** Also collect prom-client's default process metrics (but GC durations: see process-metrics.ts). @default true */
  readonly defaultMetrics?: boolean;
}

/** The supervisor's Prometheus metrics, on a registry of their own. */
export interface Metrics {
  readonly registry: Registry;
  /** Counts one request answered by `app` with `status` after `ms` milliseconds. */
  observeRequest(app: string, status: number, ms: number): void;
  observeReconcile(event: ReconcileEvent): void;
  observeStart(event: StartEvent): void;
  /** Counts one block of the event loop the watcher reported, now over. */
  observeLoopBlocked(event: LoopBlockedEvent): void;
  /** The exposition text and its content type, for `GET /_supervisor/metrics`. */
  render(): Promise<{ contentType: string; body: string }>;
  /** Stops listening to the backend's events. */
  close(): void;
}

const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const START_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RECONCILE_OUTCOMES: readonly ReconcileEvent['outcome'][] = ['ok', 'retry', 'terminal'];

/** `2xx`, `4xx`…: one label per class keeps the series count bounded. */
export function codeClass(status: number): string {
  return CODE_CLASSES[codeClassIndex(status)]!;
}

const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;

function codeClassIndex(status: number): number {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? Math.floor(status / 100) - 1 : 5;
}

/**
 * Creates the metrics. With a backend, `appvisor_apps` is computed on each scrape from
 * `listApps()` (from the last statuses seen if that fails), the replica gauges from
 * `listReplicas()` when it has one, and reconcile / start events are observed as they happen.
 */
export function createMetrics(
  backend?: Pick<AdminBackend, 'listApps' | 'events'> & Partial<Pick<AdminBackend, 'listReplicas'>>,
  options: MetricsOptions = {},
): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const maxAppLabels = options.maxAppLabels ?? 5000;
  const lastStatus = new Map<string, AppStatus>();

  new Gauge({
    name: 'appvisor_apps',
    help: 'Apps by status.',
    labelNames: ['status'],
    registers,
    async collect() {
      if (backend !== undefined) {
        try {
          const apps: AppView[] = await backend.listApps();
          lastStatus.clear();
          for (const app of apps) lastStatus.set(app.name, app.status);
        } catch {
          // The last statuses seen are still a fair answer; a scrape must not fail for this.
        }
      }
      const counts = new Map<AppStatus, number>(APP_STATUSES.map((s) => [s, 0]));
      for (const status of lastStatus.values()) counts.set(status, (counts.get(status) ?? 0) + 1);
      for (const [status, count] of counts) this.set({ status }, count);
    },
  });
  if (backend?.listReplicas !== undefined)
    registerReplicaGauges(registry, backend.listReplicas.bind(backend));
  const reconciles = new Counter({
    name: 'appvisor_reconciles_total',
    help: 'Reconcile runs by outcome (ok, retry, terminal).',
    labelNames: ['outcome'],
    registers,
  });
  for (const outcome of RECONCILE_OUTCOMES) reconciles.inc({ outcome }, 0);
  const reconcileFailures = new Counter({
    name: 'appvisor_reconcile_failures_total',
    help: 'Reconcile runs that failed (retried or terminal).',
    registers,
  });
  const reconcileDuration = new Histogram({
    name: 'appvisor_reconcile_duration_seconds',
    help: 'Duration of reconcile runs.',
    buckets: RECONCILE_BUCKETS,
    registers,
  });
  const startDuration = new Histogram({
    name: 'appvisor_app_start_duration_seconds',
    help: 'Duration of app starts, by outcome (ok, failed).',
    labelNames: ['outcome'],
    buckets: START_BUCKETS,
    registers,
  });
  const loopBlocks = new Counter({
    name: 'appvisor_event_loop_blocked_total',
    help: 'Blocks of the event loop over 1 s, by the app whose handler was running ("" when none was named), counted once the loop runs again.',
    labelNames: ['app'],
    registers,
  });
  loopBlocks.inc({ app: '' }, 0);
  const loopBlockedSeconds = new Counter({
    name: 'appvisor_event_loop_blocked_seconds_total',
    help: 'Time the event loop spent in those blocks, by app.',
    labelNames: ['app'],
    registers,
  });
  // One set of app labels for every per-app metric: an app is named in all of them or in none,
  // and the cap bounds the app label values of the whole scrape.
  const appLabels = new AppLabels(maxAppLabels);
  if (options.live !== undefined) registerLiveGauges(registry, options.live, appLabels);
  const requests = new RequestMetrics(REQUEST_BUCKETS, appLabels);
  registry.registerMetric(requests.counter);
  registry.registerMetric(requests.histogram);
  if (options.defaultMetrics ?? true) collectProcessMetrics(registry);

  const metrics: Metrics = {
    registry,
    observeRequest(app, status, ms) {
      requests.observe(app, status, ms / 1000);
    },
    observeReconcile({ outcome, durationMs }) {
      reconciles.inc({ outcome });
      if (outcome !== 'ok') reconcileFailures.inc();
      reconcileDuration.observe(durationMs / 1000);
    },
    observeStart({ ok, durationMs }) {
      startDuration.observe({ outcome: ok ? 'ok' : 'failed' }, durationMs / 1000);
    },
    observeLoopBlocked({ app, ms }) {
      const labels = { app: appLabels.of(app ?? '') };
      loopBlocks.inc(labels);
      loopBlockedSeconds.inc(labels, ms / 1000);
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    close() {
      backend?.events.off('reconcile', metrics.observeReconcile);
      backend?.events.off('start', metrics.observeStart);
      backend?.events.off('status', onStatus);
      backend?.events.off('loopBlocked', metrics.observeLoopBlocked);
    },
  };
  const onStatus = (event: StatusEvent): void => {
    lastStatus.set(event.app, event.status);
  };
  backend?.events.on('reconcile', metrics.observeReconcile);
  backend?.events.on('start', metrics.observeStart);
  backend?.events.on('status', onStatus);
  backend?.events.on('loopBlocked', metrics.observeLoopBlocked);
  return metrics;
}

/**
 * `app` label values bounded like the request metrics': the first `max` apps seen keep their
 * name for good, every later one is OTHER_APP_LABEL.
 */
class AppLabels {
  readonly #max: number;
  readonly #named = new Set<string>();

  constructor(max: number) {
    this.#max = max;
  }

  of(app: string): string {
    if (this.#named.has(app)) return app;
    if (this.#named.size >= this.#max) return OTHER_APP_LABEL;
    this.#named.add(app);
    return app;
  }
}

/**
 * `appvisor_open_connections{app}` and `appvisor_app_memory_bytes{app}`, read from the live
 * figures on each scrape (apps with traffic in the last hour); the apps past the label cap are
 * summed under OTHER_APP_LABEL.
 */
function registerLiveGauges(registry: Registry, live: LiveAppFigures, labels: AppLabels): void {
  const registers = [registry];
  const gauge = (name: string, help: string, value: (c: CurrentAppFigures) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['app'],
      registers,
      collect() {
        this.reset();
        const sums = new Map<string, number>();
        for (const current of live.current()) {
          const v = value(current);
          if (v === undefined) continue;
          const label = labels.of(current.app);
          sums.set(label, (sums.get(label) ?? 0) + v);
        }
        for (const [app, v] of sums) this.set({ app }, v);
      },
    });
  gauge(
    'appvisor_open_connections',
    'Requests in flight plus upgraded sockets open now, by app (apps with traffic in the last hour).',
    (c) => c.openConnections,
  );
  gauge('appvisor_app_memory_bytes', 'Memory an isolated app last reported (its heartbeat), by app.', (c) =>
    c.memoryMb === undefined ? undefined : Math.round(c.memoryMb * 1024 * 1024),
  );
}

/**
 * `appvisor_replicas`, `appvisor_leader` and `appvisor_drift_apps`, from one list of the
 * replicas per scrape (the backend caches it); a failed read leaves the last values.
 */
function registerReplicaGauges(registry: Registry, listReplicas: () => Promise<ReplicaView[]>): void {
  const registers = [registry];
  const gauge = (name: string, help: string, value: (replicas: ReplicaView[]) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        try {
          this.set(value(await listReplicas()));
        } catch {
          // The last value stands; a scrape must not fail for this.
        }
      },
    });
  gauge('appvisor_replicas', 'Live replicas on the state store (seen within three heartbeats).', (rs) =>
    rs.reduce((n, r) => n + (r.live ? 1 : 0), 0),
  );
  gauge('appvisor_leader', '1 on the replica that holds the leader lease, else 0.', (rs) =>
    rs.some((r) => r.self && r.leader) ? 1 : 0,
  );
  gauge(
    'appvisor_drift_apps',
    "Apps whose manifest in this replica's apps.d differs from what is applied.",
    (rs) => rs.find((r) => r.self)?.drift.length ?? 0,
  );
}

const DURATION_METRIC = 'appvisor_request_duration_seconds';

/** One app's request figures since start: counts per status class and a duration histogram. */
interface AppRequests {
  readonly app: string;
  readonly classes: Float64Array;
  /** Per bucket (not cumulative); the last slot is above every bound. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * `appvisor_requests_total` and `appvisor_request_duration_seconds`, recorded per request
 * into plain arrays keyed by app and turned into samples only on a scrape. prom-client's own
 * `inc`/`observe` with labels hash and validate the label set on every call, which cost about
 * as much as the rest of the gateway's work for a request.
 */
class RequestMetrics {
  readonly #bounds: readonly number[];
  readonly #apps = new Map<string, AppRequests>();
  readonly #labels: AppLabels;
  readonly counter: Metric;
  readonly histogram: Metric;

  constructor(bounds: readonly number[], labels: AppLabels) {
    this.#bounds = bounds;
    this.#labels = labels;
    this.counter = this.#metric(
      'appvisor_requests_total',
      'Requests answered, by app and status class.',
      'counter',
      () => this.#counterValues(),
    );
    this.histogram = this.#metric(DURATION_METRIC, 'Request durations by app.', 'histogram', () =>
      this.#histogramValues(),
    );
  }

  /** Counts one request; an app past the label cap is counted as OTHER_APP_LABEL. */
  observe(app: string, status: number, seconds: number): void {
    // One lookup for the common case, an app already counted.
    const entry = this.#apps.get(app) ?? this.#add(this.#labels.of(app));
    entry.classes[codeClassIndex(status)]!++;
    const bounds = this.#bounds;
    let b = 0;
    while (b < bounds.length && seconds > bounds[b]!) b++;
    entry.buckets[b]!++;
    entry.sum += seconds;
    entry.count++;
  }

  #add(app: string): AppRequests {
    let entry = this.#apps.get(app);
    if (entry === undefined) {
      entry = {
        app,
        classes: new Float64Array(CODE_CLASSES.length),
        buckets: new Float64Array(this.#bounds.length + 1),
        sum: 0,
        count: 0,
      };
      this.#apps.set(app, entry);
    }
    return entry;
  }

  #counterValues(): object[] {
    const values: object[] = [];
    for (const e of this.#apps.values()) {
      for (let i = 0; i < CODE_CLASSES.length; i++) {
        if (e.classes[i]! > 0)
          values.push({ value: e.classes[i], labels: { app: e.app, code_class: CODE_CLASSES[i] } });
      }
    }
    return values;
  }

  #histogramValues(): object[] {
    const name = DURATION_METRIC;
    const values: object[] = [];
    for (const e of this.#apps.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += e.buckets[i]!;
        values.push({
          labels: { le: this.#bounds[i], app: e.app },
          value: acc,
          metricName: `${name}_bucket`,
        });
      }
      values.push({
        labels: { le: '+Inf', app: e.app },
        value: e.count,
        metricName: `${name}_bucket`,
      });
      values.push({ labels: { app: e.app }, value: e.sum, metricName: `${name}_sum` });
      values.push({ labels: { app: e.app }, value: e.count, metricName: `${name}_count` });
    }
    return values;
  }

  /** The shape a prom-client registry reads: `get()` for text and JSON, `reset()`. */
  #metric(name: string, help: string, type: 'counter' | 'histogram', values: () => object[]): Metric {
    const apps = this.#apps;
    const metric = {
      name,
      help,
      type,
      aggregator: 'sum',
      get: async () => ({ name: metric.name, help, type, aggregator: 'sum', values: values() }),
      reset: () => apps.clear(),
    };
    // prom-client types registerMetric for its own classes; the registry only calls get() and reset().
    return metric as unknown as Metric;
  }
}
