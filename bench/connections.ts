/**
 * PostgreSQL connections held by a supervisor running N apps (new-schema mode: the cheapest to
 * provision; every app connects to the main database, so `pg_stat_activity.datname` counts them):
 * 1. after the first reconcile (state store, admin pool, main app);
 * 2. while and right after visiting every app once (each start opens the app's pool);
 * 3. once the pools' idle timeout (10 s) has passed: idle pools must close;
 * 4. under a burst of concurrent requests that each run a query (`GET /api/me` with a valid
 *    token for a user that does not exist: verify, one SELECT, 401) across B apps, R at a time
 *    per app — the peak, sampled every 20 ms — and again after the idle timeout.
 * Phases 1–4 run once per variant, each with a fresh supervisor on the same apps:
 * - `shared`: the apps share one pool per database (`database.schemaPoolSize`, 6th argument,
 *   default 10), within the connection budget (5th argument, default 64);
 * - `per-app`: a pool per app (`schemaPoolSize: 0`, as before the shared pool), no cap;
 * - `per-app-budget`: a pool per app within the connection budget (its reclaiming churns).
 * What bounds a per-app pool: Runtime `poolMax` (default 5) × apps, and the budget across all
 * app pools per server, against the server's max_connections.
 *
 * N apps × even one connection each is more than the shared server's max_connections (100 by
 * default), and filling it would break every other user of that server. So the bench starts a
 * private, throw-away PostgreSQL cluster (initdb on 127.0.0.1, a free port, fsync off, a high
 * max_connections) when the PostgreSQL binaries are here, and removes it afterwards; or it uses
 * APPVISOR_BENCH_PG_URL, a server you may fill up. Otherwise it skips.
 *
 * 5. (private cluster) restarted with max_connections = `limited` (100, the PostgreSQL default and
 *    the shared server's setting): a fresh supervisor with the first variant, every app visited
 *    once; how many first visits fail, and with what.
 *
 *   node --import tsx bench/connections.ts [apps=1000] [burstApps=200] [perApp=10] [limited=100 (0: skip)]
 *     [budget=64] [schemaPoolSize=10] [variants=shared,per-app,per-app-budget]
 */
import { execFile as execFileCb } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { SETTINGS_DEFAULTS } from '../src/config/settings.js';
import { applyPlan } from '../src/reconcile/commands.js';
import { createJwtHelpers } from '../src/runtime/jwt.js';
import { type Supervisor, startSupervisor } from '../src/serve/supervisor.js';
import { openStateStore } from '../src/state/store.js';
import {
  createWorkspace,
  errorCode,
  httpGet,
  listArg,
  numberArg,
  onInterrupt,
  PG_URL,
  progress,
  report,
  round,
  silentLog,
  summarize,
  type Workspace,
  withPg,
} from './lib.js';

const execFile = promisify(execFileCb);
const APPS = Math.max(1, numberArg(0, 1000));
const BURST_APPS = Math.min(APPS, numberArg(1, 200));
const PER_APP = Math.max(1, numberArg(2, 10));
const LIMITED = numberArg(3, 100);
const BUDGET = numberArg(4, SETTINGS_DEFAULTS.connectionBudget);
const SCHEMA_POOL_SIZE = Math.max(1, numberArg(5, SETTINGS_DEFAULTS.schemaPoolSize));
/** A budget no run reaches: no cap. */
const NO_CAP = 100_000;

interface Variant {
  readonly key: string;
  readonly label: string;
  readonly schemaPoolSize: number;
  readonly budget: number;
}

const ALL_VARIANTS: readonly Variant[] = [
  {
    key: 'shared',
    label: `shared pool of ${SCHEMA_POOL_SIZE}, budget ${BUDGET}`,
    schemaPoolSize: SCHEMA_POOL_SIZE,
    budget: BUDGET,
  },
  { key: 'per-app', label: 'a pool per app, no cap (before)', schemaPoolSize: 0, budget: NO_CAP },
  {
    key: 'per-app-budget',
    label: `a pool per app, budget ${BUDGET} (before)`,
    schemaPoolSize: 0,
    budget: BUDGET,
  },
];
const VARIANTS = listArg(
  6,
  ALL_VARIANTS.map((v) => v.key),
).map((key) => {
  const found = ALL_VARIANTS.find((v) => v.key === key);
  if (!found) throw new Error(`unknown variant ${key}; use ${ALL_VARIANTS.map((v) => v.key).join(',')}`);
  return found;
});
const BURST_ROUNDS = 3;
/** Runtime's default `poolMax` (src/runtime/runtime.ts). */
const POOL_MAX = 5;
/** The pools' `idleTimeoutMillis` (src/dialects/postgres/provider.ts, src/dialects/postgres/client.ts). */
const IDLE_TIMEOUT_MS = 10_000;
const SAMPLE_MS = 20;

interface PgServer {
  readonly url: string;
  readonly kind: 'private cluster' | 'APPVISOR_BENCH_PG_URL';
  /** Restarts with another max_connections (private cluster only). */
  restart?(maxConnections: number): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** initdb + pg_ctl start in a temp folder (as the postgres user when run as root). */
async function privateCluster(maxConnections: number): Promise<PgServer | undefined> {
  let bin: string;
  try {
    bin = (await execFile('pg_config', ['--bindir'])).stdout.trim();
    await fs.access(path.join(bin, 'initdb'));
  } catch {
    return undefined;
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-bench-pg-'));
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    asRoot ? execFile('runuser', ['-u', 'postgres', '--', cmd, ...args]) : execFile(cmd, args);
  let started = false;
  const stop = async (): Promise<void> => {
    unhook();
    if (started)
      await run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
    started = false;
    await fs.rm(dir, { recursive: true, force: true });
  };
  const unhook = onInterrupt(stop);
  try {
    if (asRoot) {
      const uid = Number((await execFile('id', ['-u', 'postgres'])).stdout);
      const gid = Number((await execFile('id', ['-g', 'postgres'])).stdout);
      await fs.chown(dir, uid, gid);
    }
    await run(path.join(bin, 'initdb'), [
      '-D',
      data,
      '-A',
      'trust',
      '-U',
      'postgres',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    const port = await freePort();
    const pgCtl = (action: 'start' | 'restart', max: number) => {
      const options = [
        `-c port=${port}`,
        '-c listen_addresses=127.0.0.1',
        `-c unix_socket_directories=${dir}`,
        `-c max_connections=${max}`,
        '-c fsync=off',
      ].join(' ');
      const log = path.join(dir, 'log');
      return run(path.join(bin, 'pg_ctl'), [
        '-D',
        data,
        '-l',
        log,
        '-w',
        '-t',
        '60',
        '-m',
        'fast',
        '-o',
        options,
        action,
      ]);
    };
    await pgCtl('start', maxConnections);
    started = true;
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      kind: 'private cluster',
      restart: async (max) => {
        await pgCtl('restart', max);
      },
      stop,
    };
  } catch (err) {
    console.warn(`!!! could not start a private PostgreSQL cluster: ${String(err)}`);
    await stop();
    return undefined;
  }
}

/** Counts client connections to `database`, sampling in the background to catch peaks. */
class ConnectionCounter {
  readonly #client: pg.Client;
  readonly #database: string;
  #sampling: Promise<void> | undefined;
  #stop = false;
  #peak = 0;

  private constructor(client: pg.Client, database: string) {
    this.#client = client;
    this.#database = database;
  }

  static async open(serverUrl: string, database: string): Promise<ConnectionCounter> {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    return new ConnectionCounter(client, database);
  }

  async count(): Promise<number> {
    const { rows } = await this.#client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND datname = $1 AND pid <> pg_backend_pid()`,
      [this.#database],
    );
    return Number(rows[0]?.n);
  }

  /** Connections ever opened to the database (pg_stat_database.sessions, PostgreSQL 14+). */
  async sessions(): Promise<number> {
    const { rows } = await this.#client.query<{ n: string }>(
      'SELECT sessions AS n FROM pg_stat_database WHERE datname = $1',
      [this.#database],
    );
    return Number(rows[0]?.n);
  }

  /** Starts sampling; `stopSampling()` returns the peak seen. */
  startSampling(): void {
    this.#stop = false;
    this.#peak = 0;
    this.#sampling = (async () => {
      while (!this.#stop) {
        this.#peak = Math.max(this.#peak, await this.count());
        await sleep(SAMPLE_MS);
      }
    })();
  }

  async stopSampling(): Promise<number> {
    this.#stop = true;
    await this.#sampling;
    this.#peak = Math.max(this.#peak, await this.count());
    return this.#peak;
  }

  /** Polls until at most `target` connections remain (or the deadline); returns count and seconds. */
  async waitForAtMost(target: number, deadlineMs: number): Promise<{ count: number; seconds: number }> {
    const t0 = performance.now();
    let n = await this.count();
    while (n > target && performance.now() - t0 < deadlineMs) {
      await sleep(250);
      n = await this.count();
    }
    return { count: n, seconds: round((performance.now() - t0) / 1000, 1) };
  }

  close(): Promise<void> {
    return this.#client.end();
  }
}

const sharedMax = await withPg(PG_URL, (c) => c.query<{ max_connections: string }>('SHOW max_connections'))
  .then((r) => Number(r.rows[0]?.max_connections))
  .catch(() => Number.NaN);
const wanted = Math.max(...VARIANTS.map((v) => Math.min(POOL_MAX * BURST_APPS + APPS, v.budget))) + 100;
const server: PgServer | undefined = process.env.APPVISOR_BENCH_PG_URL
  ? { url: process.env.APPVISOR_BENCH_PG_URL, kind: 'APPVISOR_BENCH_PG_URL', stop: async () => {} }
  : await privateCluster(Math.max(200, wanted));
if (!server) {
  console.log(
    'connections: skipped (no PostgreSQL binaries for a private cluster and no APPVISOR_BENCH_PG_URL)',
  );
  console.log(JSON.stringify({ bench: 'connections', skipped: true }));
} else {
  try {
    await main(server);
  } finally {
    await server.stop();
  }
}

type Figures = Awaited<ReturnType<typeof unlimited>>;

interface Provisioned {
  readonly ws: Workspace;
  readonly names: readonly string[];
  /** A token per burst app, signed the way the app signs its own. */
  readonly tokens: ReadonlyMap<string, string>;
}

/** Runs `fn` with a supervisor and a connection counter on the run's main database; closes both. */
async function withSupervisor<T>(
  server: PgServer,
  ws: Workspace,
  variant: Variant,
  fn: (sup: Supervisor, counter: ConnectionCounter) => Promise<T>,
): Promise<T> {
  const counter = await ConnectionCounter.open(server.url, `${ws.prefix}_main`);
  try {
    const database = {
      ...ws.settings.database,
      connectionBudget: variant.budget,
      schemaPoolSize: variant.schemaPoolSize,
    };
    const settings = { ...ws.settings, database };
    const sup = await startSupervisor({ settings, log: silentLog, env: {} });
    try {
      await sup.ready;
      return await fn(sup, counter);
    } finally {
      await sup.close({ graceMs: 5_000 });
    }
  } finally {
    await counter.close();
  }
}

/** Visits every app once; counts the answers and keeps the first error body. */
async function visitAll(
  sup: Supervisor,
  names: readonly string[],
): Promise<{ answers: Map<string, number>; firstError: string | undefined }> {
  const answers = new Map<string, number>();
  let firstError: string | undefined;
  for (const name of names) {
    const r = await httpGet(`${sup.url}/apps/${name}/api/info`);
    const key = r.status === 200 ? '200' : `${r.status} ${errorCode(r.body) ?? ''}`.trim();
    if (r.status !== 200) firstError ??= r.body;
    answers.set(key, (answers.get(key) ?? 0) + 1);
  }
  return { answers, firstError };
}

/** Phases 1–4 on a server with room for every connection. */
async function unlimited(server: PgServer, { ws, names, tokens }: Provisioned, variant: Variant) {
  progress(`${variant.label}:`);
  return withSupervisor(server, ws, variant, async (sup, counter) => {
    const afterReady = await counter.count();

    progress(`visiting ${APPS} apps one after another`);
    counter.startSampling();
    const t1 = performance.now();
    const { answers: visitAnswers } = await visitAll(sup, names);
    const visitS = round((performance.now() - t1) / 1000);
    const peakVisits = await counter.stopSampling();
    const afterVisits = await counter.count();
    progress(`${afterVisits} connections after the visits; waiting for the idle timeout`);
    const idleAfterVisits = await counter.waitForAtMost(afterReady, IDLE_TIMEOUT_MS * 3);

    progress(`burst: ${BURST_APPS} apps × ${PER_APP} concurrent queries, ${BURST_ROUNDS} rounds`);
    const burstAgent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
    const burstAnswers = new Map<string, number>();
    const latencies: number[] = [];
    const sessionsBefore = await counter.sessions();
    counter.startSampling();
    const t2 = performance.now();
    for (let r = 0; r < BURST_ROUNDS; r++) {
      await Promise.all(
        [...tokens].flatMap(([name, token]) =>
          Array.from({ length: PER_APP }, async () => {
            const sent = performance.now();
            const res = await httpGet(`${sup.url}/apps/${name}/api/me`, {
              agent: burstAgent,
              headers: { authorization: `Bearer ${token}` },
            }).catch((err: Error) => ({ status: 0, body: err.message }));
            latencies.push(performance.now() - sent);
            const key =
              res.status === 401 ? '401 (queried)' : `${res.status} ${errorCode(res.body) ?? ''}`.trim();
            burstAnswers.set(key, (burstAnswers.get(key) ?? 0) + 1);
          }),
        ),
      );
    }
    const burstS = round((performance.now() - t2) / 1000, 2);
    const peakBurst = await counter.stopSampling();
    burstAgent.destroy();
    const idleAfterBurst = await counter.waitForAtMost(afterReady, IDLE_TIMEOUT_MS * 3);
    // Read after the idle wait: pg_stat_database lags by up to the statistics flush interval.
    const opened = (await counter.sessions()) - sessionsBefore;
    return {
      afterReady,
      visit: {
        seconds: visitS,
        peak: peakVisits,
        after: afterVisits,
        answers: Object.fromEntries(visitAnswers),
      },
      idleAfterVisits,
      burst: {
        apps: BURST_APPS,
        perApp: PER_APP,
        rounds: BURST_ROUNDS,
        seconds: burstS,
        requestsPerSecond: Math.round((BURST_APPS * PER_APP * BURST_ROUNDS) / burstS),
        latencyMs: summarize(latencies),
        peak: peakBurst,
        connectionsOpened: opened,
        answers: Object.fromEntries(burstAnswers),
      },
      idleAfterBurst,
    };
  });
}

/** Phase 5: the same apps on a server with PostgreSQL's default max_connections. */
async function limited(server: PgServer, { ws, names }: Provisioned, variant: Variant) {
  progress(`restarting the private cluster with max_connections ${LIMITED}; visiting ${APPS} apps`);
  await server.restart!(LIMITED);
  return withSupervisor(server, ws, variant, async (sup, counter) => {
    counter.startSampling();
    const t = performance.now();
    const { answers, firstError } = await visitAll(sup, names);
    const seconds = round((performance.now() - t) / 1000);
    const peak = await counter.stopSampling();
    return {
      variant: variant.key,
      maxConnections: LIMITED,
      seconds,
      peak,
      answers: Object.fromEntries(answers),
      firstError,
    };
  });
}

async function provision(server: PgServer): Promise<Provisioned> {
  const ws = await createWorkspace('pg-schema', { pgUrl: server.url });
  try {
    const names = Array.from({ length: APPS }, (_, i) => ws.appName(i));
    await ws.writeManifests(names);
    progress(`provisioning ${APPS} apps (new-schema) on the ${server.kind}`);
    const t0 = performance.now();
    const applied = await applyPlan(ws.settings, { log: silentLog });
    if (applied.failures.length > 0) throw new Error(`apply failed: ${JSON.stringify(applied.failures[0])}`);
    progress(`provisioned in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // Read before any supervisor runs, so this store's connections are gone by then.
    const tokens = new Map<string, string>();
    const store = await openStateStore(ws.mainUrl, { log: silentLog });
    try {
      const mainSecret = (await store.getSecret('main'))!;
      for (const name of names.slice(0, BURST_APPS)) {
        const own = await store.getSecret(name);
        if (!own) throw new Error(`${name} has no secret`);
        const jwt = createJwtHelpers({ app: name, ownSecret: own, mode: 'own', mainSecret, isMain: false });
        tokens.set(name, jwt.sign({ sub: 'nobody' }));
      }
    } finally {
      await store.close();
    }
    return { ws, names, tokens };
  } catch (err) {
    await ws.dispose();
    throw err;
  }
}

async function main(server: PgServer): Promise<void> {
  const maxConnections = await withPg(server.url, (c) =>
    c.query<{ max_connections: string }>('SHOW max_connections'),
  ).then((r) => Number(r.rows[0]?.max_connections));
  const provisioned = await provision(server);
  try {
    const runs: { variant: Variant; figures: Figures }[] = [];
    for (const variant of VARIANTS)
      runs.push({ variant, figures: await unlimited(server, provisioned, variant) });
    const capped =
      LIMITED > 0 && server.restart ? await limited(server, provisioned, VARIANTS[0]!) : undefined;
    const answers = (a: Record<string, number>): string =>
      Object.entries(a)
        .map(([k, v]) => `${v}× ${k}`)
        .join(', ');
    /** One table row: a phase, and its figure under each variant. */
    const row = (phase: string, figure: (f: Figures) => string | number): Record<string, unknown> => ({
      phase,
      ...Object.fromEntries(runs.map((r) => [r.variant.label, figure(r.figures)])),
    });
    const rows = [
      row('after the first reconcile: connections', (f) => f.afterReady),
      row(`visiting ${APPS} apps one after another: peak`, (f) => f.visit.peak),
      row('… seconds', (f) => f.visit.seconds),
      row('right after the visits', (f) => f.visit.after),
      row('after the idle timeout', (f) => `${f.idleAfterVisits.count} (+${f.idleAfterVisits.seconds} s)`),
      row(`burst ${BURST_APPS} apps × ${PER_APP} × ${BURST_ROUNDS}: peak`, (f) => f.burst.peak),
      row('… connections opened', (f) => f.burst.connectionsOpened),
      row('… requests/s', (f) => f.burst.requestsPerSecond),
      row('… latency p50 ms', (f) => f.burst.latencyMs.p50),
      row('… answers', (f) => answers(f.burst.answers)),
      row('after the idle timeout', (f) => `${f.idleAfterBurst.count} (+${f.idleAfterBurst.seconds} s)`),
    ];
    if (capped) {
      rows.push({
        phase: `max_connections ${LIMITED}: visiting ${APPS} apps (${capped.seconds} s), peak`,
        [VARIANTS[0]!.label]: `${capped.peak}: ${answers(capped.answers)}`,
      });
    }
    const shared = runs.find((r) => r.variant.key === 'shared')?.figures;
    const perApp = runs.find((r) => r.variant.key === 'per-app')?.figures;
    report(
      `connections: PostgreSQL client connections of one supervisor with ${APPS} apps (new-schema) on a ` +
        `${server.kind} (max_connections ${maxConnections}; the shared server here: ${sharedMax}). ` +
        `A pool per app: poolMax ${POOL_MAX} × ${APPS} apps = ${POOL_MAX * APPS} — node ${process.version}`,
      rows,
      {
        bench: 'connections',
        node: process.version,
        server: server.kind,
        mode: 'new-schema',
        apps: APPS,
        maxConnections,
        sharedServerMaxConnections: sharedMax,
        perAppPoolMax: POOL_MAX,
        connectionBudget: BUDGET,
        schemaPoolSize: SCHEMA_POOL_SIZE,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
        variants: Object.fromEntries(runs.map((r) => [r.variant.key, { ...r.variant, ...r.figures }])),
        ...(shared && perApp
          ? {
              sharedVsPerApp: {
                peakConnections: [shared.visit.peak, perApp.visit.peak],
                burstRequestsPerSecond: [shared.burst.requestsPerSecond, perApp.burst.requestsPerSecond],
                throughputRatio: round(shared.burst.requestsPerSecond / perApp.burst.requestsPerSecond, 2),
              },
            }
          : {}),
        ...(capped ? { limited: capped } : {}),
      },
    );
  } finally {
    await provisioned.ws.dispose();
  }
}
