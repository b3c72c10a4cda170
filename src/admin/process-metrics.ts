import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';

/** A prom-client default-metric collector: registers its metrics on `registry`. */
type Collector = (registry: Registry, config: { readonly eventLoopMonitoringPrecision: number }) => void;

/**
 * prom-client's default collectors that `collectDefaultMetrics` would install, but for the GC
 * duration histogram. That one keeps a `PerformanceObserver` on 'gc' entries subscribed for the
 * life of the process, and Node's GC tracking behind it cost ≈ 0.5 µs of CPU per gateway request
 * (≈ 4 %: bench/gateway.ts figures, with and without it, in bench/README.md) — more than the
 * gateway's own routing. Every other default figure (CPU, memory, heap spaces, event loop lag,
 * handles, file descriptors, version) is still collected.
 *
 * `collectDefaultMetrics` takes no list, so the collectors are loaded one by one by the names
 * prom-client itself lists (`metricsList`, one module per name); a name without its module fails
 * loudly here and in the metrics tests rather than silently dropping figures.
 */
const WITHOUT = new Set(['gc']);

const require = createRequire(import.meta.url);

export function collectProcessMetrics(registry: Registry): void {
  const { metricsList } = require('prom-client/lib/defaultMetrics.js') as { metricsList: readonly string[] };
  for (const name of metricsList) {
    if (WITHOUT.has(name)) continue;
    const collect = require(`prom-client/lib/metrics/${name}.js`) as Collector;
    collect(registry, { eventLoopMonitoringPrecision: 10 });
  }
}
