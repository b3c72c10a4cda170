/**
 * Converging N new apps with `applyPlan` (what `appvisor apply` does: databases or schemas,
 * secrets, records, migrations), for SQLite files, PostgreSQL schemas, PostgreSQL databases and
 * MariaDB databases; then a second apply (nothing to do) and `computePlan` on the converged
 * state. Each backend gets its own main database and unique names, all dropped afterwards.
 *
 *   node --import tsx bench/converge.ts [apps=500] [backends=sqlite,pg-schema,pg-database,mysql]
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { applyPlan, computePlan } from '../src/reconcile/commands.js';
import {
  BACKEND_LABELS,
  BACKENDS,
  type Backend,
  createWorkspace,
  listArg,
  MYSQL_URL,
  numberArg,
  PG_URL,
  progress,
  report,
  round,
  serverAvailable,
  silentLog,
  type Workspace,
  withMysql,
  withPg,
} from './lib.js';

const APPS = numberArg(0, 500);
const KINDS = listArg(1, BACKENDS) as Backend[];

interface Figures {
  readonly backend: Backend;
  readonly apps: number;
  readonly applyS: number;
  readonly msPerApp: number;
  readonly steps: number;
  /** Mean ms per step of each action, as the executor timed them. */
  readonly stepMeanMs: Readonly<Record<string, number>>;
  /** Time outside the steps: reading manifests, observing, planning, the lock, the store. */
  readonly overheadMsPerApp: number;
  readonly noopApplyMs: number;
  readonly planMs: number;
}

/** How many of the run's databases/schemas exist on the server: the converged state, checked. */
async function countCreated(ws: Workspace): Promise<number> {
  switch (ws.backend) {
    case 'sqlite': {
      const files = await fs.readdir(path.join(ws.dataDir, 'apps')).catch(() => []);
      return files.filter((f) => f.startsWith(ws.prefix) && f.endsWith('.sqlite')).length;
    }
    case 'pg-schema':
      return withPg(ws.mainUrl, async (c) => {
        const { rows } = await c.query<{ n: string }>(
          'SELECT count(*) AS n FROM pg_namespace WHERE starts_with(nspname, $1)',
          [ws.prefix],
        );
        return Number(rows[0]?.n);
      });
    case 'pg-database':
      return withPg(PG_URL, async (c) => {
        const { rows } = await c.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_database WHERE starts_with(datname, $1) AND datname <> $2`,
          [ws.prefix, `${ws.prefix}_main`],
        );
        return Number(rows[0]?.n);
      });
    case 'mysql':
      return withMysql(MYSQL_URL, async (c) => {
        const [rows] = await c.query(
          'SELECT count(*) AS n FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ?) = ? AND SCHEMA_NAME <> ?',
          [ws.prefix.length, ws.prefix, `${ws.prefix}_main`],
        );
        return Number((rows as { n: number }[])[0]?.n);
      });
  }
}

async function run(backend: Backend): Promise<Figures | undefined> {
  if (backend.startsWith('pg') && !(await serverAvailable('postgres', PG_URL))) return undefined;
  if (backend === 'mysql' && !(await serverAvailable('mysql', MYSQL_URL))) return undefined;
  const ws = await createWorkspace(backend);
  try {
    const names = Array.from({ length: APPS }, (_, i) => ws.appName(i));
    await ws.writeManifests(names);

    progress(`${BACKEND_LABELS[backend]}: applying ${APPS} new apps`);
    const t0 = performance.now();
    const first = await applyPlan(ws.settings, {
      log: silentLog,
      onApp: (i, total) => {
        if (i > 0 && i % 100 === 0)
          progress(`${i}/${total} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      },
    });
    const applyMs = performance.now() - t0;
    if (first.failures.length > 0) {
      throw new Error(`${first.failures.length} apps failed, e.g. ${JSON.stringify(first.failures[0])}`);
    }
    const created = await countCreated(ws);
    if (created !== APPS)
      throw new Error(`expected ${APPS} databases/schemas on the server, found ${created}`);

    const t1 = performance.now();
    const second = await applyPlan(ws.settings, { log: silentLog });
    const noopApplyMs = performance.now() - t1;
    if (second.outcomes.length > 0 || second.failures.length > 0) {
      throw new Error(`the second apply was not a no-op: ${second.outcomes.length} steps`);
    }

    const t2 = performance.now();
    const planned = await computePlan(ws.settings);
    const planMs = performance.now() - t2;
    if (planned.changes.length > 0)
      throw new Error(`plan after apply lists ${planned.changes.length} changes`);

    const byAction = new Map<string, number[]>();
    for (const o of first.outcomes) {
      const list = byAction.get(o.step.action) ?? [];
      list.push(o.ms);
      byAction.set(o.step.action, list);
    }
    const stepMeanMs: Record<string, number> = {};
    let stepTotal = 0;
    for (const [action, times] of byAction) {
      const sum = times.reduce((a, b) => a + b, 0);
      stepTotal += sum;
      stepMeanMs[action] = round(sum / times.length);
    }
    return {
      backend,
      apps: APPS,
      applyS: round(applyMs / 1000),
      msPerApp: round(applyMs / APPS),
      steps: first.outcomes.length,
      stepMeanMs,
      overheadMsPerApp: round((applyMs - stepTotal) / APPS),
      noopApplyMs: round(noopApplyMs),
      planMs: round(planMs),
    };
  } finally {
    await ws.dispose();
  }
}

const results: Figures[] = [];
for (const backend of KINDS) {
  if (!BACKENDS.includes(backend)) throw new Error(`unknown backend ${backend}; use ${BACKENDS.join(',')}`);
  const figures = await run(backend);
  if (figures) results.push(figures);
}

report(
  `converge: applyPlan of ${APPS} new apps, then a no-op apply and computePlan (node ${process.version})`,
  results.map((r) => ({
    backend: BACKEND_LABELS[r.backend],
    'apply s': r.applyS,
    'ms/app': r.msPerApp,
    'create ms': r.stepMeanMs['create-database'] ?? r.stepMeanMs['create-schema'],
    'migrate ms': r.stepMeanMs.upgrade,
    'other ms/app': r.overheadMsPerApp,
    'no-op apply ms': r.noopApplyMs,
    'plan ms': r.planMs,
  })),
  { bench: 'converge', node: process.version, apps: APPS, results },
);
