/**
 * Several real `appvisor serve` processes (SPEC §8.1 replicas) on one PostgreSQL or MariaDB state
 * store, one shared apps.d and one shared admin token, behind a real HAProxy on 127.0.0.1; the
 * replicas' main-database URL optionally goes through a TCP proxy so a test can cut it.
 * Everything it starts (processes, folders, databases) is removed by `close()`, and the processes
 * are killed when the test process exits, so a failing test leaves nothing running.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { generateMasterKeyText } from '../../src/secrets/master-key.js';
import { type JsonAnswer, type RequestOptions, request, waitFor } from '../serve/harness.js';
import { type LogLine, onLogLines } from './log-lines.js';
import {
  dropPgDatabasesOf,
  MYSQL_URL,
  PG_URL,
  uniqueName,
  urlWithDatabase,
  withMysqlConnection,
  withPgClient,
} from './servers.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = path.join(ROOT, 'src/cli/main.ts');
// Resolved here: `--import tsx` alone would look for tsx from the temp folder the process runs in.
const TSX = import.meta.resolve('tsx');
export const SAMPLE_APP = new URL('../../src/sample-app/index.ts', import.meta.url).href;

/** The admin token every replica of a set accepts (APPVISOR_ADMIN_TOKEN). */
export const REPLICA_ADMIN_TOKEN = 'replica-admin-token-0123456789abcdef';

export type StoreDialect = 'postgres' | 'mysql';

/** Whether HAProxy is installed (the replica tests need it; `.ci/run` installs it). */
export function haproxyInstalled(): boolean {
  return spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** Lines kept per process: enough to explain a failure, bounded under load. */
const KEPT_LINES = 300;

export interface Replica {
  readonly index: number;
  readonly port: number;
  /** http://127.0.0.1:<port>, this replica directly. */
  readonly url: string;
  readonly dataDir: string;
  /** The application module it runs (APPVISOR_APP), or undefined for the built-in sample app. */
  readonly app: string | undefined;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last log lines (JSON-parsed), for assertions and failure messages. */
  readonly lines: LogLine[];
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string | null>;
  /** Whether the process is still running. */
  alive(): boolean;
  /** The end of its stderr. */
  stderr(): string;
}

export interface ReplicaSetOptions {
  readonly dialect: StoreDialect;
  /** @default 3 */
  readonly count?: number;
  /** Files written to the shared apps.d before the first replica starts (file name → YAML). */
  readonly manifests?: (prefix: string) => Readonly<Record<string, string>>;
  /** Route the replicas' main-database URL through a TCP proxy (`set.proxy`). @default false */
  readonly throughProxy?: boolean;
  /** The application module of replica `i` (APPVISOR_APP); undefined: the sample app. */
  readonly app?: (index: number) => string | undefined;
  /** Connections each replica may open to the database server (APPVISOR_DB_CONNECTION_BUDGET). @default 6 */
  readonly connectionBudget?: number;
  /** More environment for every replica. */
  readonly env?: Readonly<Record<string, string>>;
  /** More environment for replica `index` on `port` (e.g. APPVISOR_ADVERTISE_URL through a proxy). */
  readonly replicaEnv?: (
    index: number,
    port: number,
  ) => Readonly<Record<string, string>> | Promise<Readonly<Record<string, string>>>;
  /** How long a replica may take to answer readyz 200. @default 60000 */
  readonly readyTimeoutMs?: number;
}

export interface ReplicaSet {
  readonly dialect: StoreDialect;
  /** Unique to this set: its main database is `<prefix>_main`, and app names should start with it. */
  readonly prefix: string;
  readonly dir: string;
  readonly appsDir: string;
  /** The main database, directly (for the test's own queries). */
  readonly mainUrl: string;
  /** The main database URL the replicas use (through the proxy when `throughProxy`). */
  readonly replicaMainUrl: string;
  /** The TCP proxy in front of the database server, when `throughProxy`. */
  readonly proxy: TcpProxy | undefined;
  /** http://127.0.0.1:<port> of HAProxy. */
  readonly haproxyUrl: string;
  /** HAProxy's log so far: the replicas' health-check state changes (DOWN, UP and why). */
  haproxyLog(): string;
  /** The replicas by index; a restarted one replaces its entry. */
  readonly replicas: readonly Replica[];
  /** The URL of replica `i`, directly. */
  url(i: number): string;
  /** A request to replica `i` directly, or through HAProxy with `'haproxy'`. */
  request(target: number | 'haproxy', urlPath: string, opts?: RequestOptions): Promise<JsonAnswer>;
  /** An admin API call (with the shared token) to replica `i` or through HAProxy. */
  admin(target: number | 'haproxy', urlPath: string, method?: string): Promise<JsonAnswer>;
  /** Sends `signal` (default SIGKILL) to replica `i` and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<number | string | null>;
  /** Starts replica `i` again on its port and data folder (optionally another app module); waits for readyz. */
  restart(i: number, opts?: { app?: string | undefined }): Promise<Replica>;
  /** Writes (or overwrites) a manifest in the shared apps.d. */
  write(file: string, text: string): Promise<void>;
  remove(file: string): Promise<void>;
  /** SQL on the main database's server, directly (PostgreSQL `$1`, MariaDB `?` placeholders). */
  serverQuery<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Stops HAProxy and every replica, closes the proxy, drops every database of the set, removes the folder. */
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHooked = false;

/** Processes must not outlive the test process, whatever happened to its hooks. */
function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const c of running) c.kill('SIGKILL');
  });
}

/** A port that was free a moment ago on 127.0.0.1 (fixed ports let a replica restart where HAProxy expects it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Reads a child's stdout as JSON log lines, keeping the last KEPT_LINES, and its stderr as text. */
function collect(child: ChildProcess): { lines: LogLine[]; stderr: () => string } {
  const lines: LogLine[] = [];
  let stderr = '';
  onLogLines(child.stdout!, (line) => {
    lines.push(line);
    if (lines.length > KEPT_LINES) lines.splice(0, lines.length - KEPT_LINES);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  return { lines, stderr: () => stderr };
}

function exitOf(child: ChildProcess): Promise<number | string | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? child.signalCode);
    else child.once('exit', (code, signal) => resolve(code ?? signal));
  });
}

interface ReplicaSpec {
  readonly index: number;
  readonly port: number;
  readonly dataDir: string;
  readonly app: string | undefined;
  /** Its own environment, over the set's. */
  readonly env?: Readonly<Record<string, string>>;
}

function spawnReplica(spec: ReplicaSpec, env: NodeJS.ProcessEnv): Replica {
  const child = spawn(process.execPath, ['--import', TSX, CLI, 'serve'], {
    cwd: spec.dataDir,
    env: {
      ...env,
      ...spec.env,
      APPVISOR_PORT: String(spec.port),
      APPVISOR_DATA_DIR: spec.dataDir,
      ...(spec.app === undefined ? {} : { APPVISOR_APP: spec.app }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const { lines, stderr } = collect(child);
  const exited = exitOf(child);
  const url = `http://127.0.0.1:${spec.port}`;
  const replica: Replica = {
    ...spec,
    url,
    child,
    pid: child.pid ?? -1,
    lines,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
    stderr,
  };
  return replica;
}

function describeFailure(replica: Replica): string {
  const log = replica.lines
    .slice(-15)
    .map((l) => l.msg)
    .join(' | ');
  return `replica ${replica.index} (pid ${replica.pid}); log: ${log}; stderr: ${replica.stderr().slice(-2_000)}`;
}

async function waitReady(replica: Replica, timeoutMs: number): Promise<void> {
  let exitedEarly = false;
  void replica.exited.then(() => {
    exitedEarly = true;
  });
  await waitFor(
    async () => {
      if (exitedEarly) throw new Error(`exited before readyz: ${describeFailure(replica)}`);
      const res = await fetch(`${replica.url}/_supervisor/readyz`);
      const body = (await res.json().catch(() => ({}))) as { status?: string };
      // `waiting`: up, and out of rotation on purpose (newer code while an older replica serves).
      return res.status === 200 || body.status === 'waiting';
    },
    `readyz of replica ${replica.index}`,
    timeoutMs,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; ${describeFailure(replica)}`);
  });
}

/** Waits until `replica` lists every app of `names`, none of them still provisioning, and serves each. */
async function waitListed(replica: Replica, names: readonly string[], timeoutMs: number): Promise<void> {
  if (names.length === 0) return;
  await waitFor(
    async () => {
      const res = await request(replica.url, '/_supervisor/api/apps', { token: REPLICA_ADMIN_TOKEN });
      if (res.status !== 200) return false;
      const listed = new Map((res.body as { name: string; status: string }[]).map((a) => [a.name, a.status]));
      const missing = names.filter((n) => !listed.has(n) || listed.get(n) === 'provisioning');
      if (missing.length > 0) throw new Error(`not listed yet: ${missing.join(', ')}`);
      // Listed is not served: a follower learns of the leader's new records by its change feed.
      for (const n of names) {
        const served = await request(replica.url, `/apps/${n}/api/info`);
        if (served.status !== 200) throw new Error(`${n} not served yet: ${served.status}`);
      }
      return true;
    },
    `replica ${replica.index} to serve the apps of apps.d`,
    timeoutMs,
    50,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; ${describeFailure(replica)}`);
  });
}

// ---- HAProxy ----

/**
 * The HAProxy configuration in front of the replicas (the README shows it): round robin, a
 * health check on readyz (healthz is 200 before a starting replica has read the apps, which
 * then answers 404 for a moment), and L7 retries on another replica for a 503 (APP_DATA_NEWER during a
 * rolling upgrade, a replica shutting down) or a dead connection, so a client sees none of them
 * while one replica is left that can answer.
 */
export function haproxyConfig(listenPort: number, replicaPorts: readonly number[]): string {
  const servers = replicaPorts
    .map((port, i) => `  server replica${i + 1} 127.0.0.1:${port} check inter 500ms fall 2 rise 1`)
    .join('\n');
  return `global
  maxconn 2000
  log stderr format raw local0

defaults
  mode http
  log global
  # Health checks that change a server's state are logged (why a replica left the rotation).
  option log-health-checks
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  # A replica busy migrating may answer readyz late: 2 s before a check counts as failed.
  timeout check 2s
  retries 3
  # Each retry goes to another replica, not the one that just failed.
  option redispatch 1
  retry-on 503 conn-failure empty-response response-timeout

frontend appvisor
  bind 127.0.0.1:${listenPort}
  default_backend replicas

backend replicas
  balance roundrobin
  option httpchk GET /_supervisor/readyz
${servers}
`;
}

interface Haproxy {
  readonly url: string;
  /** What HAProxy logged: health-check state changes of the replicas. */
  log(): string;
  close(): Promise<void>;
}

async function startHaproxy(dir: string, replicaPorts: readonly number[]): Promise<Haproxy> {
  const port = await freePort();
  const file = path.join(dir, 'haproxy.cfg');
  await fs.writeFile(file, haproxyConfig(port, replicaPorts));
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const { stderr } = collect(child);
  const exited = exitOf(child);
  const url = `http://127.0.0.1:${port}`;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  await waitFor(
    async () => {
      if (gone) throw new Error(`haproxy exited: ${stderr()}`);
      const res = await fetch(`${url}/_supervisor/healthz`);
      await res.arrayBuffer();
      return res.status === 200;
    },
    'haproxy to answer healthz',
    15_000,
    100,
  );
  return {
    url,
    log: () => stderr(),
    async close() {
      if (!gone) child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---- databases ----

/** Every database of the set: its main database, the apps' (named `<prefix>…`), and temporary ones its apps left. */
async function dropDatabases(dialect: StoreDialect, prefix: string): Promise<void> {
  if (dialect === 'postgres') {
    await dropPgDatabasesOf(prefix);
    return;
  }
  await withMysqlConnection(async (c) => {
    const [rows] = await c.query(
      'SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE ?',
      [`${prefix}%`],
    );
    for (const { name } of rows as { name: string }[]) await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
  });
}

// ---- the set ----

/** Starts `count` replicas on a fresh main database and HAProxy in front of them; waits for every readyz. */
export async function startReplicaSet(options: ReplicaSetOptions): Promise<ReplicaSet> {
  const { dialect } = options;
  const count = options.count ?? 3;
  const prefix = uniqueName('avr');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-replicas-'));
  const appsDir = path.join(dir, 'apps.d');
  await fs.mkdir(appsDir);
  const mainDb = `${prefix}_main`;
  const serverUrl = dialect === 'postgres' ? PG_URL : MYSQL_URL;
  const mainUrl = urlWithDatabase(serverUrl, mainDb);
  const replicas: Replica[] = [];
  let proxy: TcpProxy | undefined;
  let haproxy: Haproxy | undefined;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= closeAll();
    return closing;
  };
  const closeAll = async (): Promise<void> => {
    await haproxy?.close().catch(() => undefined);
    await Promise.all(
      replicas.map(async (r) => {
        if (r.alive()) r.child.kill('SIGKILL');
        await r.exited;
      }),
    );
    await proxy?.close().catch(() => undefined);
    await dropDatabases(dialect, prefix);
    await fs.rm(dir, { recursive: true, force: true });
  };

  try {
    if (dialect === 'postgres') {
      await withPgClient(PG_URL, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(mainDb)}`));
    } else {
      await withMysqlConnection((c) => c.query(`CREATE DATABASE \`${mainDb}\``));
    }
    if (options.throughProxy) {
      const target = new URL(serverUrl);
      proxy = await startTcpProxy(target.hostname, Number(target.port));
    }
    const replicaMainUrl = proxy ? proxy.url(mainUrl) : mainUrl;
    const initial = Object.entries(options.manifests?.(prefix) ?? {});
    for (const [file, text] of initial) await fs.writeFile(path.join(appsDir, file), text);
    const initialApps = initial
      .map(([, text]) => /^name: *(\S+)/m.exec(text)?.[1])
      .filter((n) => n !== undefined);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      APPVISOR_HOST: '127.0.0.1',
      APPVISOR_APPS_DIR: appsDir,
      APPVISOR_DATABASE_URL: replicaMainUrl,
      APPVISOR_ADMIN_TOKEN: REPLICA_ADMIN_TOKEN,
      // Replicas share one master key (SPEC §8.5): each generating its own would be refused.
      APPVISOR_MASTER_KEY: generateMasterKeyText(),
      APPVISOR_DB_CONNECTION_BUDGET: String(options.connectionBudget ?? 6),
      // As the README advises behind HAProxy (inter 500ms fall 2): out of rotation before it stops.
      APPVISOR_SHUTDOWN_DRAIN: '1500ms',
      NO_COLOR: '1',
      ...options.env,
    };
    const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
    const specs: ReplicaSpec[] = [];
    for (let index = 0; index < count; index++) {
      const dataDir = path.join(dir, `replica-${index + 1}`);
      await fs.mkdir(dataDir);
      const port = await freePort();
      const own = await options.replicaEnv?.(index, port);
      specs.push({ index, port, dataDir, app: options.app?.(index), ...(own ? { env: own } : {}) });
    }
    for (const spec of specs) replicas.push(spawnReplica(spec, env));
    await Promise.all(replicas.map((r) => waitReady(r, readyTimeoutMs)));
    // readyz can turn 200 on a replica before the leader has applied apps.d (about half a second
    // for 15 new MariaDB databases): a scenario starts once every replica lists every app.
    await Promise.all(replicas.map((r) => waitListed(r, initialApps, readyTimeoutMs)));
    haproxy = await startHaproxy(
      dir,
      specs.map((s) => s.port),
    );
    const haproxyUrl = haproxy.url;
    const balancer = haproxy;
    const base = (target: number | 'haproxy'): string =>
      target === 'haproxy' ? haproxyUrl : replicas[target]!.url;

    return {
      dialect,
      prefix,
      dir,
      appsDir,
      mainUrl,
      replicaMainUrl,
      proxy,
      haproxyUrl,
      haproxyLog: () => balancer.log(),
      replicas,
      url: (i) => replicas[i]!.url,
      request: (target, urlPath, opts) => request(base(target), urlPath, opts),
      admin: (target, urlPath, method = 'GET') =>
        request(base(target), urlPath, { method, token: REPLICA_ADMIN_TOKEN }),
      async kill(i, signal = 'SIGKILL') {
        const replica = replicas[i]!;
        if (replica.alive()) replica.child.kill(signal);
        return replica.exited;
      },
      async restart(i, opts = {}) {
        const old = replicas[i]!;
        if (old.alive()) throw new Error(`replica ${i} is still running (pid ${old.pid}); kill it first`);
        const app = 'app' in opts ? opts.app : old.app;
        const own = specs[i]?.env;
        const replica = spawnReplica(
          { index: i, port: old.port, dataDir: old.dataDir, app, ...(own ? { env: own } : {}) },
          env,
        );
        replicas[i] = replica;
        await waitReady(replica, readyTimeoutMs);
        return replica;
      },
      write: (file, text) => fs.writeFile(path.join(appsDir, file), text),
      remove: (file) => fs.rm(path.join(appsDir, file), { force: true }),
      async serverQuery<T>(sql: string, params: unknown[] = []): Promise<T[]> {
        if (dialect === 'postgres') {
          return withPgClient(PG_URL, async (c) => (await c.query(sql, params)).rows as T[]);
        }
        return withMysqlConnection(async (c) => (await c.query(sql, params))[0] as T[]);
      },
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/**
 * An application module in `dir` that is the sample app at `version`, with one more migration
 * per version above the sample's (an idempotent table `upgrade_v<N>`), and whose `GET /api/info`
 * reports that version: what a rolling upgrade test deploys. Returns the module's path.
 */
export async function writeVersionedApp(dir: string, version: number): Promise<string> {
  const file = path.join(dir, `app-v${version}.mjs`);
  const source = `import sample from ${JSON.stringify(SAMPLE_APP)};
const extra = [];
for (let v = sample.version + 1; v <= ${version}; v++) {
  extra.push({
    version: v,
    description: 'upgrade table v' + v,
    up: (db) => db.exec('CREATE TABLE IF NOT EXISTS upgrade_v' + v + ' (id INT)'),
  });
}
export default {
  ...sample,
  version: ${version},
  migrations: [...sample.migrations, ...extra],
  async create(ctx) {
    const inner = await sample.create(ctx);
    return {
      handler(req, res) {
        if (req.method === 'GET' && req.url === '/api/info') {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ name: ctx.name, version: ${version} }));
          return;
        }
        inner.handler(req, res);
      },
      ...(inner.close ? { close: () => inner.close() } : {}),
    };
  },
};
`;
  await fs.writeFile(file, source);
  return file;
}
