/**
 * What the benches share: a workspace per run (temp folder, main database, unique app names,
 * everything dropped afterwards, also on Ctrl-C), manifests, Settings, the database servers,
 * plain HTTP requests, statistics, child scripts bundled without a loader, and the output
 * (a table and one JSON line, last).
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { type Logger, pino } from 'pino';
import type { Settings } from '../src/config/types.js';

export const PG_URL = process.env.APPVISOR_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const MYSQL_URL = process.env.APPVISOR_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const silentLog: Logger = pino({ level: 'silent' });

// ---- arguments ----

/** The positional argument at `index` (0 = first after the script) as a number, or `fallback`. */
export function numberArg(index: number, fallback: number): number {
  const raw = process.argv[2 + index];
  if (raw === undefined || raw === '' || raw === '-') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`argument ${index + 1} must be a number, got ${raw}`);
  return n;
}

/** The positional argument at `index` as a comma-separated list, or `fallback`. */
export function listArg(index: number, fallback: readonly string[]): string[] {
  const raw = process.argv[2 + index];
  if (raw === undefined || raw === '' || raw === '-') return [...fallback];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

// ---- cleanup, also on Ctrl-C ----

const cleanups = new Set<() => Promise<unknown>>();
let signalsHooked = false;
let interrupted = false;

/** Registers `fn` to run on SIGINT/SIGTERM; returns the function that unregisters it. */
export function onInterrupt(fn: () => Promise<unknown>): () => void {
  if (!signalsHooked) {
    signalsHooked = true;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        interrupted = true;
        console.error(`\n${signal}: cleaning up…`);
        const all = [...cleanups].reverse();
        cleanups.clear();
        void (async () => {
          for (const f of all) await f().catch((err) => console.error('cleanup failed:', err));
        })().finally(() => process.exit(130));
      });
    }
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

// ---- database servers ----

export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function withMysql<T>(url: string, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection({ uri: url, connectTimeout: 3_000 });
  try {
    return await fn(conn);
  } finally {
    await conn.end();
  }
}

/** `url` pointing at `database` instead. */
export function urlWithDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Whether the server answers; prints one line saying why not. */
export async function serverAvailable(kind: 'postgres' | 'mysql', url: string): Promise<boolean> {
  try {
    if (kind === 'postgres') await withPg(url, (c) => c.query('select 1'));
    else await withMysql(url, (c) => c.query('select 1'));
    return true;
  } catch (err) {
    console.warn(`!!! ${kind} unreachable at ${url.replace(/:[^:@/]*@/, ':***@')}: ${String(err)}`);
    return false;
  }
}

/**
 * Drops every PostgreSQL database whose name starts with `prefix` (connections forced out),
 * `first` before the others: the main database goes first, which cuts a still-running apply off
 * its state store and admin connection.
 */
export async function dropPgDatabases(prefix: string, serverUrl = PG_URL, first?: string): Promise<number> {
  return withPg(serverUrl, async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname = $2 DESC',
      [prefix, first ?? ''],
    );
    for (const r of rows)
      await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(r.datname)} WITH (FORCE)`);
    return rows.length;
  });
}

/** Drops every MySQL/MariaDB database whose name starts with `prefix`, `first` first. */
export async function dropMysqlDatabases(
  prefix: string,
  serverUrl = MYSQL_URL,
  first?: string,
): Promise<number> {
  return withMysql(serverUrl, async (c) => {
    const [rows] = await c.query<mysql.RowDataPacket[]>(
      'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ?) = ? ORDER BY SCHEMA_NAME = ? DESC',
      [prefix.length, prefix, first ?? ''],
    );
    for (const r of rows) await c.query(`DROP DATABASE IF EXISTS \`${String(r.n).replace(/`/g, '``')}\``);
    return rows.length;
  });
}

// ---- workspaces ----

/** Where the apps' databases live. */
export type Backend = 'sqlite' | 'pg-schema' | 'pg-database' | 'mysql';
export const BACKENDS: readonly Backend[] = ['sqlite', 'pg-schema', 'pg-database', 'mysql'];
export const BACKEND_LABELS: Readonly<Record<Backend, string>> = {
  sqlite: 'SQLite files',
  'pg-schema': 'PostgreSQL schemas',
  'pg-database': 'PostgreSQL databases',
  mysql: 'MariaDB databases',
};

/** One bench run's world: a temp folder, a main database, apps named `<prefix>_<nnnn>`. */
export interface Workspace {
  readonly backend: Backend;
  /** Every database (and app name) of this run starts with it. */
  readonly prefix: string;
  readonly dir: string;
  readonly appsDir: string;
  readonly dataDir: string;
  readonly mainUrl: string;
  readonly settings: Settings;
  appName(i: number): string;
  /** The manifest of app `name`, with `extra` YAML lines appended. */
  manifest(name: string, extra?: string): string;
  /** Writes `<name>.yaml` for each name (in batches). */
  writeManifests(names: readonly string[], extra?: (name: string) => string): Promise<void>;
  /** Drops every database of this run and removes the folder; idempotent. */
  dispose(): Promise<void>;
}

export interface WorkspaceOptions {
  readonly pgUrl?: string;
  readonly mysqlUrl?: string;
}

/** Creates a workspace; its databases are dropped by `dispose()` or on Ctrl-C. */
export async function createWorkspace(backend: Backend, opts: WorkspaceOptions = {}): Promise<Workspace> {
  const pgUrl = opts.pgUrl ?? PG_URL;
  const mysqlUrl = opts.mysqlUrl ?? MYSQL_URL;
  const prefix = `avb${crypto.randomBytes(3).toString('hex')}`;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `appvisor-bench-${backend}-`));
  const appsDir = path.join(dir, 'apps.d');
  const dataDir = path.join(dir, 'data');
  await fs.mkdir(appsDir);
  const mainDb = `${prefix}_main`;
  const removeAll = async (): Promise<void> => {
    if (backend === 'pg-schema' || backend === 'pg-database') await dropPgDatabases(prefix, pgUrl, mainDb);
    if (backend === 'mysql') await dropMysqlDatabases(prefix, mysqlUrl, mainDb);
    await fs.rm(dir, { recursive: true, force: true });
  };
  let disposing: Promise<void> | undefined;
  const dispose = (): Promise<void> => {
    disposing ??= (async () => {
      unhook();
      await removeAll();
      if (interrupted) {
        // An apply interrupted mid-way may have had a CREATE in flight: sweep once more.
        await new Promise((resolve) => setTimeout(resolve, 300));
        await removeAll();
      }
    })();
    return disposing;
  };
  const unhook = onInterrupt(dispose);

  let mainUrl: string;
  try {
    if (backend === 'sqlite') {
      mainUrl = `sqlite:${path.join(dataDir, 'main.sqlite')}`;
    } else if (backend === 'mysql') {
      await withMysql(mysqlUrl, (c) => c.query(`CREATE DATABASE \`${mainDb}\``));
      mainUrl = urlWithDatabase(mysqlUrl, mainDb);
    } else {
      await withPg(pgUrl, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(mainDb)}`));
      mainUrl = urlWithDatabase(pgUrl, mainDb);
    }
  } catch (err) {
    await dispose();
    throw err;
  }

  const manifest = (name: string, extra = ''): string =>
    `apiVersion: appvisor/v1\nkind: App\nname: ${name}\n` +
    (backend === 'pg-schema' ? 'database:\n  mode: new-schema\n' : '') +
    extra;

  return {
    backend,
    prefix,
    dir,
    appsDir,
    dataDir,
    mainUrl,
    settings: {
      listen: { host: '127.0.0.1', port: 0 },
      appsDir,
      dataDir,
      database: { url: mainUrl },
      app: undefined,
      discoveryAdapter: 'local',
      processAdapter: 'local',
      deletionGraceMs: 86_400_000,
      configFile: undefined,
    },
    appName: (i) => `${prefix}_${String(i).padStart(4, '0')}`,
    manifest,
    async writeManifests(names, extra) {
      for (let i = 0; i < names.length; i += 200) {
        await Promise.all(
          names
            .slice(i, i + 200)
            .map((n) => fs.writeFile(path.join(appsDir, `${n}.yaml`), manifest(n, extra?.(n) ?? ''))),
        );
      }
    },
    dispose,
  };
}

// ---- HTTP ----

export interface HttpResult {
  readonly status: number;
  readonly body: string;
}

/** One keep-alive connection, so the client adds as little as possible to what is measured. */
export const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** GET `url` (optionally with a `Host` header); resolves with status and body, never throws on status. */
export function httpGet(
  url: string,
  opts: { host?: string; headers?: http.OutgoingHttpHeaders; agent?: http.Agent; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      {
        agent: opts.agent ?? agent,
        headers: { ...opts.headers, ...(opts.host ? { host: opts.host } : {}) },
        timeout: opts.timeoutMs ?? 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** The `error.code` of a JSON error body, if it is one. */
export function errorCode(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

// ---- statistics ----

export const round = (x: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
  readonly mean: number;
}

/** n, min, p50, p95, max and mean of `xs`, rounded to 2 decimals. */
export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return {
    n: s.length,
    min: round(s[0] ?? Number.NaN),
    p50: round(percentile(s, 50)),
    p95: round(percentile(s, 95)),
    max: round(s.at(-1) ?? Number.NaN),
    mean: round(mean),
  };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** What the benches read of an autocannon run. */
export interface AutocannonResult {
  readonly requests: { readonly average: number; readonly total: number };
  readonly latency: { readonly p50: number; readonly p99: number; readonly average: number };
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
}

/** autocannon (CommonJS, untyped), with the options the benches pass. */
export const autocannon = createRequire(import.meta.url)('autocannon') as (opts: {
  url: string;
  connections: number;
  duration: number;
  pipelining?: number;
  requests?: { method: string; path: string }[];
}) => Promise<AutocannonResult>;

export const MiB = 1024 * 1024;
export const mib = (bytes: number): number => round(bytes / MiB, 1);

// ---- output ----

/** Prints a title, a table, and the JSON line (always the last line, so bench/run.ts can pick it up). */
export function report(title: string, rows: readonly Record<string, unknown>[], json: object): void {
  console.log(`\n${title}`);
  console.table(rows);
  console.log(JSON.stringify(json));
}

/** A one-line progress note on stderr (kept out of the figures on stdout). */
export function progress(msg: string): void {
  process.stderr.write(`  … ${msg}\n`);
}

// ---- child scripts without a loader ----

/**
 * Bundles `source` (TypeScript importing from `src/`) into a plain .mjs that `node` runs without
 * tsx, whose loader thread alone costs ~30 MB RSS per process and would skew memory figures.
 * Packages stay external. The file lives two levels under the repository root (so the
 * `new URL('../../schema/…', import.meta.url)` lookups in src/ still resolve) and is removed by
 * the returned `dispose`.
 */
export async function bundleScript(
  name: string,
  source: string,
): Promise<{ readonly file: string; dispose(): Promise<void> }> {
  const { build } = await import('esbuild');
  const dir = path.join(ROOT, 'test-artifacts', `bench-${process.pid}`);
  const file = path.join(dir, `${name}.mjs`);
  await build({
    stdin: { contents: source, resolveDir: ROOT, loader: 'ts', sourcefile: `${name}.ts` },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: file,
    logLevel: 'error',
  });
  let disposing: Promise<void> | undefined;
  const dispose = (): Promise<void> => {
    disposing ??= (async () => {
      unhook();
      await fs.rm(file, { force: true });
      // Folders go only once empty: another bundled script of this run may still be in use.
      for (const d of [dir, path.dirname(dir)]) await fs.rmdir(d).catch(() => undefined);
    })();
    return disposing;
  };
  const unhook = onInterrupt(dispose);
  return { file, dispose };
}
