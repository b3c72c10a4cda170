/**
 * The planner alone: time `plan()` over 5,000 apps (a mix of new, changed, unchanged, removed
 * and orphaned), in CLI mode and in live mode. Prints a table and one JSON line.
 *
 *   node --import tsx bench/planner.ts [apps] [runs]
 */
import { performance } from 'node:perf_hooks';
import type { AppManifest, LoadedManifest } from '../src/manifests/types.js';
import type { Actual, ActualApp, Desired, PlanOptions } from '../src/reconcile/model.js';
import { ownerMarker } from '../src/reconcile/owner.js';
import { plan } from '../src/reconcile/planner.js';
import type { AppRecord } from '../src/state/types.js';
import { median } from './lib.js';

const APPS = Number(process.argv[2] ?? 5000);
const RUNS = Number(process.argv[3] ?? 15);
const WARMUP = 3;
const STORE = 'bench-store';
const OPTS: PlanOptions = {
  main: { dialect: 'postgres', server: '127.0.0.1:5432', database: 'appvisor' },
  codeVersion: 2,
};

function manifest(name: string, i: number, variant: number): AppManifest {
  return {
    apiVersion: 'appvisor/v1',
    kind: 'App',
    name,
    displayName: variant === 1 ? `${name} (renamed)` : name,
    enabled: variant !== 2,
    startMode: i % 4 === 0 || variant === 3 ? 'with-main' : 'on-first-visit',
    environment: 'local',
    database:
      i % 3 === 0
        ? { mode: 'new-schema', name: 'appvisor', schema: variant === 4 ? `${name}_v2` : name, adopt: false }
        : { mode: 'new-database', name: variant === 4 ? `${name}_v2` : name, adopt: false },
    upgrade: true,
    jwt: { secret: i % 5 === 0 ? 'shared' : 'own' },
    domains: variant === 5 ? [`${name}.example.com`, `www.${name}.example.com`] : [`${name}.example.com`],
    config: {
      plan: 'standard',
      seats: variant === 6 ? 20 : 10,
      features: { audit: true, export: i % 2 === 0 },
    },
    deletionPolicy: i % 7 === 0 ? 'drop' : 'retain',
  };
}

const hashOf = (m: AppManifest): string => JSON.stringify(m);

function record(m: AppManifest, status: AppRecord['status']): AppRecord {
  const schema = m.database.mode === 'new-schema';
  return {
    name: m.name,
    file: `${m.name}.yaml`,
    spec: m,
    specHash: hashOf(m),
    inventory: [
      {
        kind: schema ? 'schema' : 'database',
        dialect: 'postgres',
        server: OPTS.main.server,
        name: schema ? (m.database.schema ?? m.name) : m.database.name,
        ...(schema ? { database: 'appvisor' } : {}),
        state: 'created',
        owner: ownerMarker(STORE, m.name),
        at: '2025-01-01T00:00:00.000Z',
      },
    ],
    hasSecret: m.jwt.secret === 'own',
    status,
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
  };
}

/** 30% new, 30% changed (seven kinds), 30% unchanged, 7% removed, 3% orphaned and gone. */
function build(n: number, live: boolean): { desired: Desired; actual: Actual } {
  const apps = new Map<string, LoadedManifest>();
  const actual = new Map<string, ActualApp>();
  for (let i = 0; i < n; i++) {
    const name = `app-${String(i).padStart(5, '0')}`;
    const bucket = i % 100;
    const base = manifest(name, i, 0);
    const runtime = live ? { status: 'running' as const, specHash: hashOf(base) } : undefined;
    if (bucket < 30) {
      apps.set(name, { file: `${name}.yaml`, manifest: base, hash: hashOf(base) });
      actual.set(name, { hasSecret: false, observed: { exists: false } });
    } else if (bucket < 60) {
      const next = manifest(name, i, 1 + (i % 7));
      apps.set(name, { file: `${name}.yaml`, manifest: next, hash: hashOf(next) });
      actual.set(name, {
        record: record(base, 'running'),
        observed: {
          exists: next.database.name === base.database.name && next.database.schema === base.database.schema,
        },
        hasSecret: base.jwt.secret === 'own',
        dataVersion: 2,
        ...(runtime ? { runtime } : {}),
      });
    } else if (bucket < 90) {
      apps.set(name, { file: `${name}.yaml`, manifest: base, hash: hashOf(base) });
      actual.set(name, {
        record: record(base, 'running'),
        observed: { exists: true, owner: ownerMarker(STORE, name) },
        hasSecret: base.jwt.secret === 'own',
        dataVersion: bucket < 80 ? 2 : 1,
        ...(runtime ? { runtime } : {}),
      });
    } else {
      actual.set(name, {
        record: record(base, bucket < 97 ? 'running' : 'orphaned'),
        hasSecret: true,
        ...(runtime ? { runtime } : {}),
      });
    }
  }
  return {
    desired: { apps, invalid: [], errors: [] },
    actual: { apps: actual, storeId: STORE, hasMainSecret: true, live },
  };
}

interface Row {
  readonly mode: 'cli' | 'live';
  readonly apps: number;
  readonly steps: number;
  readonly runs: number;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly usPerApp: number;
}

function measure(live: boolean): Row {
  const { desired, actual } = build(APPS, live);
  let steps = 0;
  for (let i = 0; i < WARMUP; i++) steps = plan(desired, actual, OPTS).changes.length;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    plan(desired, actual, OPTS);
    times.push(performance.now() - t0);
  }
  const med = median(times);
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    mode: live ? 'live' : 'cli',
    apps: APPS,
    steps,
    runs: RUNS,
    medianMs: round(med),
    minMs: round(Math.min(...times)),
    maxMs: round(Math.max(...times)),
    usPerApp: round((med * 1000) / APPS),
  };
}

const rows = [measure(false), measure(true)];
console.log(`planner: plan() over ${APPS} apps, median of ${RUNS} runs (node ${process.version})`);
console.table(rows);
console.log(JSON.stringify({ bench: 'planner', node: process.version, results: rows }));
