/**
 * Cold start: N provisioned, stopped apps behind a running supervisor; for each app in turn,
 * the time from sending `GET /apps/<name>/api/info` until its whole response (the visit opens
 * the app's database, checks its data version, builds the JWT helpers and calls create()).
 * Next to it: the supervisor's own start timing (its `start` event) and a second, warm request.
 * Each app is stopped again after it was measured, so no pools pile up on the shared servers.
 *
 * PostgreSQL schemas three ways: on the database's shared pool while another app of the
 * database runs (the usual case: its pool has warm connections), on the shared pool with no
 * other app running (the pool closes with its last app, so each visit opens it again), and on a
 * pool per app (`schemaPoolSize: 0`, as before the shared pool) while another app runs.
 *
 *   node --import tsx bench/cold-start.ts [apps=50]
 *     [kinds=sqlite,pg-database,pg-schema,pg-schema-alone,pg-schema-per-app,mysql]
 */
import { performance } from 'node:perf_hooks';
import { applyPlan } from '../src/reconcile/commands.js';
import { startSupervisor } from '../src/serve/supervisor.js';
import {
  BACKEND_LABELS,
  type Backend,
  createWorkspace,
  httpGet,
  listArg,
  MYSQL_URL,
  numberArg,
  PG_URL,
  progress,
  report,
  type Summary,
  serverAvailable,
  silentLog,
  summarize,
} from './lib.js';

const APPS = numberArg(0, 50);

interface Kind {
  readonly backend: Backend;
  readonly label: string;
  /** `database.schemaPoolSize`; the settings' default when absent. */
  readonly schemaPoolSize?: number;
  /** Keep one more app running throughout, visited before the measured ones. */
  readonly resident?: boolean;
}

const ALL_KINDS: Readonly<Record<string, Kind>> = {
  sqlite: { backend: 'sqlite', label: BACKEND_LABELS.sqlite },
  'pg-database': { backend: 'pg-database', label: BACKEND_LABELS['pg-database'] },
  'pg-schema': {
    backend: 'pg-schema',
    label: `${BACKEND_LABELS['pg-schema']}, shared pool, another app running`,
    resident: true,
  },
  'pg-schema-alone': { backend: 'pg-schema', label: `${BACKEND_LABELS['pg-schema']}, shared pool, alone` },
  'pg-schema-per-app': {
    backend: 'pg-schema',
    label: `${BACKEND_LABELS['pg-schema']}, a pool per app (before), another app running`,
    schemaPoolSize: 0,
    resident: true,
  },
  mysql: { backend: 'mysql', label: BACKEND_LABELS.mysql },
};
const KINDS = listArg(1, Object.keys(ALL_KINDS));
/** NocoBase's median first request to a stopped sub-app (ANCHORS.md). */
const NOCOBASE_MS = 4_700;

interface Figures {
  readonly kind: string;
  readonly backend: Backend;
  readonly label: string;
  /** Client side: request sent → full response of the first visit. */
  readonly firstVisitMs: Summary;
  /** Server side: the runner's start (database, migrations check, secrets, create()). */
  readonly startMs: Summary;
  /** The same request right after, on the running app. */
  readonly warmMs: Summary;
}

async function run(key: string, kind: Kind): Promise<Figures | undefined> {
  const { backend } = kind;
  if (backend.startsWith('pg') && !(await serverAvailable('postgres', PG_URL))) return undefined;
  if (backend === 'mysql' && !(await serverAvailable('mysql', MYSQL_URL))) return undefined;
  const ws = await createWorkspace(backend);
  try {
    const resident = kind.resident ? [ws.appName(APPS)] : [];
    const names = Array.from({ length: APPS }, (_, i) => ws.appName(i));
    await ws.writeManifests([...names, ...resident]);
    progress(`${kind.label}: provisioning ${APPS + resident.length} apps`);
    const applied = await applyPlan(ws.settings, { log: silentLog });
    if (applied.failures.length > 0) throw new Error(`apply failed: ${JSON.stringify(applied.failures[0])}`);

    const settings =
      kind.schemaPoolSize === undefined
        ? ws.settings
        : { ...ws.settings, database: { ...ws.settings.database, schemaPoolSize: kind.schemaPoolSize } };
    const sup = await startSupervisor({ settings, log: silentLog, env: {} });
    try {
      await sup.ready;
      for (const name of resident) {
        const r = await httpGet(`${sup.url}/apps/${name}/api/info`);
        if (r.status !== 200) throw new Error(`${name}: resident app answered ${r.status} ${r.body}`);
      }
      const starts = new Map<string, number>();
      sup.events.on('start', (e) => {
        if (e.ok) starts.set(e.app, e.durationMs);
      });
      const first: number[] = [];
      const warm: number[] = [];
      for (const name of names) {
        const status = sup.runtime.status(name);
        if (status !== 'stopped') throw new Error(`${name} is ${status} before its first visit`);
        const url = `${sup.url}/apps/${name}/api/info`;
        const t0 = performance.now();
        const r = await httpGet(url);
        first.push(performance.now() - t0);
        if (r.status !== 200 || (JSON.parse(r.body) as { name?: string }).name !== name) {
          throw new Error(`${name}: first visit answered ${r.status} ${r.body}`);
        }
        const t1 = performance.now();
        const again = await httpGet(url);
        warm.push(performance.now() - t1);
        if (again.status !== 200) throw new Error(`${name}: second visit answered ${again.status}`);
        await sup.runtime.stop(name);
      }
      return {
        kind: key,
        backend,
        label: kind.label,
        firstVisitMs: summarize(first),
        startMs: summarize(names.map((n) => starts.get(n) ?? Number.NaN)),
        warmMs: summarize(warm),
      };
    } finally {
      await sup.close({ graceMs: 5_000 });
    }
  } finally {
    await ws.dispose();
  }
}

const results: Figures[] = [];
for (const key of KINDS) {
  const kind = ALL_KINDS[key];
  if (!kind) throw new Error(`unknown kind ${key}; use ${Object.keys(ALL_KINDS).join(',')}`);
  const figures = await run(key, kind);
  if (figures) results.push(figures);
}

report(
  `cold start: first GET /apps/<name>/api/info to a stopped app, ${APPS} apps one after another ` +
    `(NocoBase: median ${NOCOBASE_MS} ms) — node ${process.version}`,
  results.map((r) => ({
    backend: r.label,
    'first p50 ms': r.firstVisitMs.p50,
    'first p95 ms': r.firstVisitMs.p95,
    'first max ms': r.firstVisitMs.max,
    'start p50 ms': r.startMs.p50,
    'warm p50 ms': r.warmMs.p50,
    'NocoBase / p50': Math.round(NOCOBASE_MS / r.firstVisitMs.p50),
  })),
  { bench: 'cold-start', node: process.version, apps: APPS, nocobaseMedianMs: NOCOBASE_MS, results },
);
