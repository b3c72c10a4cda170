/**
 * Converging N new apps with `applyPlan` (what `appvisor apply` does: databases or schemas,
 * secrets, records, migrations), for SQLite files, PostgreSQL schemas, PostgreSQL databases and
 * MariaDB databases, at each `reconcile.concurrency` given (default: 1 and the settings'
 * default); then a second apply (nothing to do) and `computePlan` on the converged state. Each
 * run gets its own main database and unique names, all dropped afterwards.
 *
 * Next to it, the floors (what the server itself takes, on as many bare connections as the
 * concurrency): for PostgreSQL databases bare `CREATE DATABASE` statements; for PostgreSQL
 * schemas `CREATE SCHEMA` and the sample app's own migration DDL in it (its CREATE TABLEs, no
 * bookkeeping). And the goals: 1,000 PostgreSQL schemas in < 3 s (extrapolated from N),
 * PostgreSQL databases within 1.3× the floor.
 *
 *   node --import tsx bench/converge.ts [apps=500] [backends=sqlite,pg-schema,pg-database,mysql] [concurrency=1,4]
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { SETTINGS_DEFAULTS } from '../src/config/settings.js';
import type { SqlClient } from '../src/providers/provider.js';
import { applyPlan, computePlan } from '../src/reconcile/commands.js';
import { migrations as sampleMigrations } from '../src/sample-app/migrations.js';
import {
  BACKEND_LABELS,
  BACKENDS,
  type Backend,
  createWorkspace,
  dropPgDatabases,
  listArg,
  MYSQL_URL,
  numberArg,
  onInterrupt,
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
const DEFAULT_CONCURRENCY = SETTINGS_DEFAULTS.reconcileConcurrency;
const CONCURRENCIES = [...new Set(listArg(2, ['1', String(DEFAULT_CONCURRENCY)]).map(Number))];
/** Bare CREATE DATABASE statements per floor measurement. */
const FLOOR_DATABASES = Math.min(APPS, 100);
/** Keeps the bench well inside the shared server's ~100 connections (admin pool + floor + store). */
const MAX_CONCURRENCY = 16;
const GOAL_SCHEMA_S_PER_1000 = 3;
const GOAL_DATABASE_RATIO = 1.3;

interface Figures {
  readonly backend: Backend;
  readonly concurrency: number;
  readonly apps: number;
  readonly applyS: number;
  readonly msPerApp: number;
  readonly steps: number;
  /** Mean ms per step of each action, as the executor timed them. */
  readonly stepMeanMs: Readonly<Record<string, number>>;
  /**
   * Time outside the steps: reading manifests, observing, planning, the lock, the store (only
   * meaningful at concurrency 1: the steps of several apps overlap otherwise).
   */
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

async function run(backend: Backend, concurrency: number): Promise<Figures> {
  const ws = await createWorkspace(backend);
  try {
    const names = Array.from({ length: APPS }, (_, i) => ws.appName(i));
    await ws.writeManifests(names);
    const settings = { ...ws.settings, reconcile: { concurrency } };

    progress(`${BACKEND_LABELS[backend]}: applying ${APPS} new apps, concurrency ${concurrency}`);
    const t0 = performance.now();
    const first = await applyPlan(settings, {
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
    const second = await applyPlan(settings, { log: silentLog });
    const noopApplyMs = performance.now() - t1;
    if (second.outcomes.length > 0 || second.failures.length > 0) {
      throw new Error(`the second apply was not a no-op: ${second.outcomes.length} steps`);
    }

    const t2 = performance.now();
    const planned = await computePlan(settings);
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
      concurrency,
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

/**
 * Runs `work(client, name)` for FLOOR_DATABASES names `<prefix>_<n>`, spread over `concurrency`
 * bare connections to the server; the wall time per name in ms.
 */
async function timedOnConnections(
  prefix: string,
  concurrency: number,
  work: (client: pg.Client, name: string) => Promise<void>,
): Promise<number> {
  const clients = Array.from({ length: concurrency }, () => new pg.Client({ connectionString: PG_URL }));
  try {
    await Promise.all(clients.map((c) => c.connect()));
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        while (next < FLOOR_DATABASES) await work(c, `${prefix}_${next++}`);
      }),
    );
    return (performance.now() - t0) / FLOOR_DATABASES;
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

const floorPrefix = (): string => `avb${Math.random().toString(16).slice(2, 8)}`;

/** The sample app's migration DDL on `client`, in its current database and search_path (no bookkeeping). */
async function sampleDdl(client: pg.Client): Promise<void> {
  const db = { dialect: 'postgres', exec: (sql: string) => client.query(sql) } as unknown as SqlClient;
  for (const m of sampleMigrations) await m.up(db);
}

/**
 * What the server itself takes per database: bare `CREATE DATABASE` statements, and with
 * `withDdl` also a new connection to each new database running the sample app's DDL; ms per
 * database; dropped after.
 */
async function createDatabaseFloor(concurrency: number, withDdl = false): Promise<number> {
  const prefix = floorPrefix();
  const unhook = onInterrupt(() => dropPgDatabases(prefix));
  try {
    return await timedOnConnections(prefix, concurrency, async (c, database) => {
      await c.query(`CREATE DATABASE ${database}`);
      if (!withDdl) return;
      const url = new URL(PG_URL);
      url.pathname = `/${database}`;
      const own = new pg.Client({ connectionString: url.toString() });
      await own.connect();
      await sampleDdl(own).finally(() => own.end());
    });
  } finally {
    await dropPgDatabases(prefix);
    unhook();
  }
}

/**
 * What the server itself takes per schema app: `CREATE SCHEMA`, then the sample app's migration
 * DDL in it; ms per schema; dropped after.
 */
async function schemaFloor(concurrency: number): Promise<number> {
  const prefix = floorPrefix();
  const schemas: string[] = [];
  try {
    return await timedOnConnections(prefix, concurrency, async (c, schema) => {
      schemas.push(schema);
      await c.query(`CREATE SCHEMA ${schema}`);
      await c.query(`SET search_path TO ${schema}`);
      await sampleDdl(c);
    });
  } finally {
    await withPg(PG_URL, async (c) => {
      for (const schema of schemas) await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }).catch(() => undefined);
  }
}

for (const c of CONCURRENCIES) {
  if (!Number.isInteger(c) || c < 1 || c > MAX_CONCURRENCY)
    throw new Error(`concurrency must be a whole number from 1 to ${MAX_CONCURRENCY}, got ${c}`);
}
const results: Figures[] = [];
/** ms per database of bare CREATE DATABASE, by concurrency. */
const floorMs = new Map<number, number>();
/** ms per database of CREATE DATABASE + a connection to it + the sample app's DDL, by concurrency. */
const databaseDdlFloorMs = new Map<number, number>();
/** ms per schema of CREATE SCHEMA + the sample app's DDL, by concurrency. */
const schemaFloorMs = new Map<number, number>();
for (const backend of KINDS) {
  if (!BACKENDS.includes(backend)) throw new Error(`unknown backend ${backend}; use ${BACKENDS.join(',')}`);
  if (backend.startsWith('pg') && !(await serverAvailable('postgres', PG_URL))) continue;
  if (backend === 'mysql' && !(await serverAvailable('mysql', MYSQL_URL))) continue;
  for (const concurrency of CONCURRENCIES) {
    results.push(await run(backend, concurrency));
    if (backend === 'pg-schema') {
      for (const c of new Set([1, concurrency])) {
        if (schemaFloorMs.has(c)) continue;
        progress(`floor: ${FLOOR_DATABASES} × CREATE SCHEMA + the sample app's DDL on ${c} connection(s)`);
        schemaFloorMs.set(c, round(await schemaFloor(c)));
      }
    }
    if (backend === 'pg-database') {
      for (const c of new Set([1, concurrency])) {
        if (floorMs.has(c)) continue;
        progress(`floor: ${FLOOR_DATABASES} × CREATE DATABASE on ${c} connection(s)`);
        floorMs.set(c, round(await createDatabaseFloor(c)));
        progress(`floor: ${FLOOR_DATABASES} × CREATE DATABASE + the sample app's DDL on ${c} connection(s)`);
        databaseDdlFloorMs.set(c, round(await createDatabaseFloor(c, true)));
      }
    }
  }
}

/** The run the goals are judged on: the settings' default concurrency, else the highest measured. */
function judged(backend: Backend): Figures | undefined {
  const runs = results.filter((r) => r.backend === backend);
  return runs.find((r) => r.concurrency === DEFAULT_CONCURRENCY) ?? runs.at(-1);
}

const schemaRun = judged('pg-schema');
const databaseRun = judged('pg-database');
const goals = {
  ...(schemaRun && {
    pgSchema: {
      concurrency: schemaRun.concurrency,
      msPerApp: schemaRun.msPerApp,
      seconds1000: round(schemaRun.msPerApp),
      goalSeconds1000: GOAL_SCHEMA_S_PER_1000,
      met: schemaRun.msPerApp < GOAL_SCHEMA_S_PER_1000,
      floorMsSameConcurrency: schemaFloorMs.get(schemaRun.concurrency),
      floorSeconds1000: schemaFloorMs.get(schemaRun.concurrency),
      ratio: round(schemaRun.msPerApp / schemaFloorMs.get(schemaRun.concurrency)!),
    },
  }),
  ...(databaseRun && {
    pgDatabase: {
      concurrency: databaseRun.concurrency,
      msPerApp: databaseRun.msPerApp,
      floorMsSequential: floorMs.get(1),
      floorMsSameConcurrency: floorMs.get(databaseRun.concurrency),
      ratioToSequentialFloor: round(databaseRun.msPerApp / floorMs.get(1)!),
      ratio: round(databaseRun.msPerApp / floorMs.get(databaseRun.concurrency)!),
      goalRatio: GOAL_DATABASE_RATIO,
      met: databaseRun.msPerApp / floorMs.get(databaseRun.concurrency)! <= GOAL_DATABASE_RATIO,
      withDdlFloorMsSameConcurrency: databaseDdlFloorMs.get(databaseRun.concurrency),
      ratioToWithDdlFloor: round(databaseRun.msPerApp / databaseDdlFloorMs.get(databaseRun.concurrency)!),
    },
  }),
};

const floorRow =
  (backend: string) =>
  ([c, ms]: [number, number]) => ({
    backend,
    concurrency: c,
    'apply s': round((ms * APPS) / 1000),
    'ms/app': ms,
  });
const floorRows = [
  ...[...schemaFloorMs].map(floorRow("CREATE SCHEMA + the app's DDL (floor)")),
  ...[...floorMs].map(floorRow('bare CREATE DATABASE (floor)')),
  ...[...databaseDdlFloorMs].map(floorRow("CREATE DATABASE + the app's DDL (floor)")),
];
const goalLines: string[] = [];
if (goals.pgSchema) {
  const g = goals.pgSchema;
  goalLines.push(
    `1,000 PostgreSQL schemas at concurrency ${g.concurrency}: ${g.seconds1000} s (goal < ${g.goalSeconds1000} s: ${g.met ? 'met' : 'not met'}); the server's own floor for them (CREATE SCHEMA + the app's DDL, same concurrency) ${g.floorSeconds1000} s, ${g.ratio}× it`,
  );
}
if (goals.pgDatabase) {
  const g = goals.pgDatabase;
  goalLines.push(
    `PostgreSQL databases at concurrency ${g.concurrency}: ${g.msPerApp} ms/app = ${g.ratio}× the floor at the same concurrency (${g.floorMsSameConcurrency} ms), ${g.ratioToSequentialFloor}× the sequential floor (${g.floorMsSequential} ms) (goal ≤ ${g.goalRatio}×: ${g.met ? 'met' : 'not met'}); ${g.ratioToWithDdlFloor}× CREATE DATABASE with the app's DDL (${g.withDdlFloorMsSameConcurrency} ms)`,
  );
}
report(
  [
    `converge: applyPlan of ${APPS} new apps at each concurrency, then a no-op apply and computePlan (node ${process.version})`,
    ...goalLines.map((line) => `  goal: ${line}`),
  ].join('\n'),
  [
    ...results.map((r) => ({
      backend: BACKEND_LABELS[r.backend],
      concurrency: r.concurrency,
      'apply s': r.applyS,
      'ms/app': r.msPerApp,
      'create ms': r.stepMeanMs['create-database'] ?? r.stepMeanMs['create-schema'],
      'migrate ms': r.stepMeanMs.upgrade,
      // Step times overlap at concurrency > 1: what is outside them is only known one at a time.
      'other ms/app': r.concurrency === 1 ? r.overheadMsPerApp : undefined,
      'no-op apply ms': r.noopApplyMs,
      'plan ms': r.planMs,
    })),
    ...floorRows,
  ],
  {
    bench: 'converge',
    node: process.version,
    apps: APPS,
    results,
    floorMs: Object.fromEntries(floorMs),
    schemaFloorMs: Object.fromEntries(schemaFloorMs),
    databaseDdlFloorMs: Object.fromEntries(databaseDdlFloorMs),
    goals,
  },
);
