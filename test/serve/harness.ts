/**
 * A real `appvisor serve` in a temp folder for end-to-end tests: startSupervisor on port 0,
 * manifests written to its apps.d, fetch against its URL, and polling helpers with deadlines
 * (hot reload is waited for, never slept for).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Logger, pino } from 'pino';
import type { Settings } from '../../src/config/types.js';
import type { AppView } from '../../src/runtime/view.js';
import { type Supervisor, type SupervisorOptions, startSupervisor } from '../../src/serve/supervisor.js';
import { TEST_MASTER_KEY_TEXT } from '../helpers/master-key.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

/** A manifest's YAML: the required header plus `extra` lines. */
export function manifest(name: string, extra = ''): string {
  return `apiVersion: appvisor/v1\nkind: App\nname: ${name}\n${extra}`;
}

export interface HarnessOptions {
  /** Files written to apps.d before the supervisor starts (file name → YAML). */
  readonly manifests?: Readonly<Record<string, string>>;
  /** Main database URL; default a SQLite file in the temp folder. */
  readonly databaseUrl?: string;
  /** Application module path (settings.app). */
  readonly app?: string;
  /** Reuse this folder (a second supervisor on the same data dir). */
  readonly dir?: string;
  /** Whether close() removes the folder: by default only one the harness made (no `dir`). */
  readonly removeDirOnClose?: boolean;
  /** Settings to override (e.g. `deletionGraceMs`). */
  readonly settings?: Partial<Settings>;
  /** Extra supervisor options. */
  readonly supervisor?: Partial<Omit<SupervisorOptions, 'settings' | 'log'>>;
  /** The supervisor's logger. @default silent (APPVISOR_TEST_LOG sets a level) */
  readonly log?: Logger;
  /** Do not wait for `ready` in `startServe`. */
  readonly noWait?: boolean;
}

export interface JsonAnswer {
  readonly status: number;
  readonly headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON of many shapes, only ever asserted on.
  readonly body: any;
  readonly text: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly body?: unknown;
  readonly token?: string;
  readonly host?: string;
  readonly headers?: Record<string, string>;
}

export interface Serve {
  readonly sup: Supervisor;
  readonly dir: string;
  readonly appsDir: string;
  readonly dataDir: string;
  readonly settings: Settings;
  /** Writes (or overwrites) a manifest file. */
  write(file: string, text: string): Promise<void>;
  remove(file: string): Promise<void>;
  /** fetch(sup.url + path) → JSON-parsed answer; never follows redirects. */
  request(urlPath: string, opts?: RequestOptions): Promise<JsonAnswer>;
  /** An admin API call with the admin token. */
  admin(urlPath: string, method?: string): Promise<JsonAnswer>;
  /** GET /_supervisor/api/apps/<name>; throws unless it answers 200. */
  view(name: string): Promise<AppView>;
  /** Stops the supervisor and removes its folder if it owns it (unless `keepDir`: a restart there follows). */
  close(opts?: { keepDir?: boolean }): Promise<void>;
}

type Falsy = undefined | null | false | 0 | '';

/** Polls `check` until it returns a truthy value (throws count as "not yet") or `timeoutMs` passes. */
export async function waitFor<T>(
  check: () => Promise<T | Falsy> | T | Falsy,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as T;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function request(base: string, urlPath: string, opts: RequestOptions = {}): Promise<JsonAnswer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.host) headers.host = opts.host;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  // undici's fetch forbids setting Host; use node:http for that case.
  if (opts.host) return rawRequest(base, urlPath, opts.method ?? 'GET', headers, body);
  const res = await fetch(base + urlPath, {
    method: opts.method ?? 'GET',
    headers,
    ...(body !== undefined ? { body } : {}),
    redirect: 'manual',
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: parse(text), text };
}

async function rawRequest(
  base: string,
  urlPath: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
): Promise<JsonAnswer> {
  const http = await import('node:http');
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: urlPath, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          resolve({ status: res.statusCode ?? 0, headers: h, body: parse(text), text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Makes a temp folder (apps.d, data) and starts a supervisor in it; close() removes the folder
 * it made (a folder given as `dir` is the test's: it may start another supervisor there).
 */
export async function startServe(options: HarnessOptions = {}): Promise<Serve> {
  const ownDir = options.removeDirOnClose ?? options.dir === undefined;
  const dir = options.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-')));
  const appsDir = path.join(dir, 'apps.d');
  const dataDir = path.join(dir, 'data');
  await fs.mkdir(appsDir, { recursive: true });
  await fs.mkdir(dataDir, { recursive: true });
  // Every supervisor of a test shares one master key, as replicas must (SPEC §8.5); a data folder
  // that already has a key (a second supervisor, or `apply` run there first) keeps its own.
  await fs
    .writeFile(path.join(dataDir, 'master-key'), `${TEST_MASTER_KEY_TEXT}\n`, { mode: 0o600, flag: 'wx' })
    .catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  for (const [file, text] of Object.entries(options.manifests ?? {})) {
    await fs.writeFile(path.join(appsDir, file), text);
  }
  const settings: Settings = {
    listen: { host: '127.0.0.1', port: 0 },
    appsDir,
    dataDir,
    database: { url: options.databaseUrl ?? `sqlite:${path.join(dataDir, 'main.sqlite')}` },
    app: options.app,
    discoveryAdapter: 'local',
    processAdapter: 'local',
    deletionGraceMs: 86_400_000,
    configFile: undefined,
    ...options.settings,
  };
  const sup = await startSupervisor({
    settings,
    log: options.log ?? pino({ level: process.env.APPVISOR_TEST_LOG ?? 'silent' }),
    env: { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN },
    backoff: { baseMs: 100, maxMs: 1000 },
    ...options.supervisor,
  });
  if (!options.noWait) await sup.ready;
  const req = (urlPath: string, opts?: RequestOptions) => request(sup.url, urlPath, opts);
  const serve: Serve = {
    sup,
    dir,
    appsDir,
    dataDir,
    settings,
    write: (file, text) => fs.writeFile(path.join(appsDir, file), text),
    remove: (file) => fs.rm(path.join(appsDir, file)),
    request: req,
    admin: (urlPath, method = 'GET') => req(`/_supervisor/api${urlPath}`, { method, token: ADMIN_TOKEN }),
    view: async (name) => {
      const answer = await req(`/_supervisor/api/apps/${name}`, { token: ADMIN_TOKEN });
      if (answer.status !== 200) throw new Error(`GET apps/${name}: ${answer.status} ${answer.text}`);
      return answer.body as AppView;
    },
    close: async (opts = {}) => {
      await sup.close({ graceMs: 2_000 });
      if (ownDir && !opts.keepDir) await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return serve;
}

/** Signs up `username` in the app at `base` (e.g. `/apps/crm`) and signs in: the token. */
export async function signUpAndIn(
  serve: Serve,
  base: string,
  username: string,
  password: string,
): Promise<string> {
  const created = await serve.request(`${base}/api/users`, { method: 'POST', body: { username, password } });
  if (created.status !== 201) throw new Error(`sign-up at ${base}: ${created.status} ${created.text}`);
  const signed = await serve.request(`${base}/api/auth/signin`, {
    method: 'POST',
    body: { username, password },
  });
  if (signed.status !== 200) throw new Error(`sign-in at ${base}: ${signed.status} ${signed.text}`);
  return signed.body.token as string;
}

/** What the test application module (see `writeTestApp`) records, shared through globalThis. */
export interface TestAppProbe {
  /** create() calls per app name. */
  readonly creates: Record<string, number>;
  /** Finished close() calls per app name. */
  readonly closes: Record<string, number>;
  /** `GET /slow` requests that reached an app. */
  slowArrived: number;
}

export function testAppProbe(): TestAppProbe {
  const g = globalThis as { __appvisorServeTest?: TestAppProbe };
  g.__appvisorServeTest ??= { creates: {}, closes: {}, slowArrived: 0 };
  return g.__appvisorServeTest;
}

const SAMPLE_APP = new URL('../../src/sample-app/index.ts', import.meta.url).href;

/**
 * Writes an application module into `dir` that runs the built-in sample app (at `version`: lower
 * drops later migrations, higher adds empty ones), steered per app by its manifest's `config`:
 * - `failWhileExists: FILE`: create() throws while FILE exists (delete it to "fix" the app);
 * - `hang: true`: create() never settles;
 * - `createDelayMs: N`: create() takes N ms; `closeDelayMs: N`: close() takes N ms;
 * - `GET /slow` answers "slow done" after `slowMs` (default 300) ms (counted in `slowArrived`);
 * - an upgrade is answered 101 and echoes what it is sent until the client closes it.
 * Every create() call is counted in `testAppProbe().creates`.
 */
export async function writeTestApp(
  dir: string,
  options: { readonly version?: number } = {},
): Promise<string> {
  const version = options.version ?? 'sample.version';
  const file = path.join(dir, `test-app-${options.version ?? 'sample'}.mjs`);
  await fs.writeFile(
    file,
    `import fs from 'node:fs';
import sample from ${JSON.stringify(SAMPLE_APP)};
const probe = (globalThis.__appvisorServeTest ??= { creates: {}, closes: {}, slowArrived: 0 });
const version = ${version};
// Versions above the sample app's add one harmless table each.
const extra = [];
for (let v = sample.version + 1; v <= version; v++) {
  extra.push({
    version: v,
    description: 'marker ' + v,
    up: (db) => db.exec('CREATE TABLE IF NOT EXISTS marker_' + v + ' (id INTEGER)'),
  });
}
export default {
  name: sample.name,
  version,
  migrations: [...sample.migrations.filter((m) => m.version <= version), ...extra],
  async create(ctx) {
    const cfg = ctx.config ?? {};
    probe.creates[ctx.name] = (probe.creates[ctx.name] ?? 0) + 1;
    if (cfg.failWhileExists && fs.existsSync(cfg.failWhileExists)) {
      throw new Error('create() failed on purpose for ' + ctx.name);
    }
    if (cfg.hang) await new Promise(() => {});
    if (cfg.createDelayMs) await new Promise((r) => setTimeout(r, cfg.createDelayMs));
    const inner = await sample.create(ctx);
    return {
      handler(req, res) {
        if (req.url === '/slow') {
          probe.slowArrived += 1;
          setTimeout(() => res.end('slow done'), Number(cfg.slowMs ?? 300));
          return;
        }
        inner.handler(req, res);
      },
      upgrade(req, socket) {
        socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n');
        socket.pipe(socket);
      },
      close: async () => {
        if (cfg.closeDelayMs) await new Promise((r) => setTimeout(r, cfg.closeDelayMs));
        await inner.close?.();
        probe.closes[ctx.name] = (probe.closes[ctx.name] ?? 0) + 1;
      },
    };
  },
};
`,
  );
  return file;
}
