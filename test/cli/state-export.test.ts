/**
 * `appvisor state export` and `plan --state FILE` / `--offline`, as a user runs them
 * (bin/appvisor.js): apply a set of apps, export, then edit the manifests as a pull request
 * would (every kind of step), and the offline plan is the online plan, in every format, with no
 * database reachable. On the embedded SQLite default and on a PostgreSQL main database.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSealed } from '../../src/secrets/envelope.js';
import { openStateStore } from '../../src/state/store.js';
import { tokenHash } from '../../src/state/tokens.js';
import { type CliRun, runBin } from '../helpers/cli.js';
import { masterKeyIn } from '../helpers/master-key.js';
import { postgres, uniqueName, urlWithDatabase, withPgClient } from '../helpers/servers.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUESTBOOK = path.join(ROOT, 'test/fixtures/applications/guestbook.mjs');
const PG = await postgres();
/** Nothing listens here: a main database URL that any connection attempt fails on. */
const CLOSED = 'postgres://postgres:closed@127.0.0.1:9/nowhere';
const FORMATS = ['text', 'json', 'markdown'] as const;
/** A secret a manifest puts into config (`${WIKI_API_KEY}`): the export keeps only a digest. */
const WIKI_API_KEY = 'wk-live-3f9a1c77e2d04b6c';

function manifest(name: string, extra = ''): string {
  return `apiVersion: appvisor/v1\nkind: App\nname: ${name}\n${extra}`;
}

/** How the apps of one main database keep their data: `database:` lines for a manifest. */
interface Backend {
  /** `database:` block for an app's own database or schema. */
  own(): string;
  /** `database:` block naming app `other`'s database or schema (a refusal). */
  sameAs(other: string): string;
  /** Drops the app's tables (appvisor's marks of owner and application stay): its data is empty. */
  emptyData(env: Env, app: string): Promise<void>;
}

/** What stays in an emptied app database: who owns it, and its application. */
const KEPT_TABLES = ['_appvisor_owner', 'appvisor_application'];

const SQLITE: Backend = {
  own: () => '',
  sameAs: (other) => `database: {name: ${other}}\n`,
  async emptyData(env, app) {
    const db = new Database(path.join(env.cwd, 'data', 'apps', `${app}.sqlite`));
    try {
      const tables = db
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
        .all() as { name: string }[];
      for (const { name } of tables) if (!KEPT_TABLES.includes(name)) db.exec(`DROP TABLE "${name}"`);
    } finally {
      db.close();
    }
  },
};
const SCHEMAS: Backend = {
  own: () => 'database: {mode: new-schema}\n',
  sameAs: (other) => `database: {mode: new-schema, schema: ${other}}\n`,
  async emptyData(env, app) {
    await withPgClient(env.online.APPVISOR_DATABASE_URL!, async (c) => {
      const { rows } = await c.query<{ name: string }>(
        'SELECT tablename AS name FROM pg_tables WHERE schemaname = $1',
        [app],
      );
      for (const { name } of rows) {
        if (!KEPT_TABLES.includes(name)) await c.query(`DROP TABLE "${app}"."${name}" CASCADE`);
      }
    });
  },
};

/** What is applied: the apps of the main branch. */
function applied(b: Backend, ext?: string): Record<string, string> {
  return {
    'crm.yaml': manifest('crm', `startMode: with-main\ndomains: [crm.example.com]\n${b.own()}`),
    'wiki.yaml': manifest('wiki', `config: {theme: light, apiKey: "\${WIKI_API_KEY}"}\n${b.own()}`),
    'gone.yaml': manifest('gone', `deletionPolicy: drop\ndropAfter: 1h\n${b.own()}`),
    'kept.yaml': manifest('kept', b.own()),
    'mover.yaml': manifest('mover', b.own()),
    'stuck.yaml': manifest('stuck', b.own()),
    ...(ext ? { 'ext.yaml': manifest('ext', ext) } : {}),
  };
}

/** A pull request that creates, changes, removes (one drop scheduled), refuses and moves apps. */
function pullRequest(b: Backend, ext?: string): Record<string, string> {
  return {
    'crm.yaml': manifest(
      'crm',
      `startMode: with-main\ndomains: [crm.example.com, sales.example.com]\n${b.own()}`,
    ),
    'wiki.yaml': manifest('wiki', `config: {theme: dark, apiKey: "\${WIKI_API_KEY}"}\n${b.own()}`),
    'mover.yaml': manifest('mover', `application: guestbook\n${b.own()}`),
    'stuck.yaml': manifest('stuck', `application: guestbook\n${b.own()}`),
    'blog.yaml': manifest('blog', `startMode: with-main\n${b.own()}`),
    // The database of kept, which the pull request removes (its data stays): not copycat's.
    'copycat.yaml': manifest('copycat', b.sameAs('kept')),
    ...(ext ? { 'ext.yaml': manifest('ext', `displayName: External\n${ext}`) } : {}),
  };
}

async function useManifests(cwd: string, files: Record<string, string>): Promise<void> {
  const dir = path.join(cwd, 'apps.d');
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(dir, file), text);
}

/**
 * A run without what changes from second to second: a removal's drop is due a grace after the
 * plan is made, so two plans made seconds apart name different times.
 */
function stable(run: CliRun): CliRun {
  const times = (text: string) => text.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>');
  return { code: run.code, stdout: times(run.stdout), stderr: times(run.stderr) };
}

/** Every string in a JSON document. */
function strings(x: unknown): string[] {
  if (typeof x === 'string') return [x];
  if (Array.isArray(x)) return x.flatMap(strings);
  if (typeof x === 'object' && x !== null) return Object.values(x).flatMap(strings);
  return [];
}

interface Env {
  readonly cwd: string;
  /** The environment of the machine that reaches the databases. */
  readonly online: NodeJS.ProcessEnv;
  /** A CI job's: no credentials, the main database unreachable. */
  readonly offline: NodeJS.ProcessEnv;
}

interface Scenario {
  readonly label: string;
  readonly skip: boolean;
  readonly backend: Backend;
  /** Sets up a fresh main database; returns the environment and what tears it down. */
  setUp(): Promise<{ env: Env; ext?: string; proxy?: TcpProxy; tearDown(): Promise<void> }>;
  /** Makes every database unreachable for the offline plans (undo with the returned function). */
  hide(env: Env): Promise<() => Promise<void>>;
}

const SETTINGS = `applications:\n  guestbook: ${JSON.stringify(GUESTBOOK)}\ndeletionGrace: 1h\n`;

const SCENARIOS: readonly Scenario[] = [
  {
    label: 'the embedded SQLite default',
    skip: false,
    backend: SQLITE,
    async setUp() {
      const cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-state-export-'));
      await fs.writeFile(path.join(cwd, 'appvisor.yaml'), SETTINGS);
      return {
        env: { cwd, online: {}, offline: {} },
        tearDown: () => fs.rm(cwd, { recursive: true, force: true }),
      };
    },
    // The data folder moved away: the main database file and every app's file are gone.
    async hide(env) {
      const data = path.join(env.cwd, 'data');
      await fs.rename(data, `${data}.away`);
      return () => fs.rename(`${data}.away`, data);
    },
  },
  {
    label: 'a PostgreSQL main database (schemas, and a new-connection app behind a counting proxy)',
    skip: !PG.available,
    backend: SCHEMAS,
    async setUp() {
      const cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-state-export-pg-'));
      await fs.writeFile(path.join(cwd, 'appvisor.yaml'), SETTINGS);
      const mainDb = uniqueName('avexp');
      const extDb = uniqueName('avext');
      await withPgClient(PG.url, (c) => c.query(`CREATE DATABASE "${mainDb}"`));
      const proxy = await startTcpProxy('127.0.0.1', Number(new URL(PG.url).port || 5432));
      // A password the export must never show (the test server trusts any).
      const u = new URL(proxy.url(PG.url));
      u.password = 'hunter2';
      u.pathname = '';
      const ext = `database: {mode: new-connection, name: ${extDb}, connection: {url: "\${EXT_URL}"}}\n`;
      return {
        env: {
          cwd,
          online: { APPVISOR_DATABASE_URL: urlWithDatabase(PG.url, mainDb), EXT_URL: u.toString() },
          offline: { APPVISOR_DATABASE_URL: CLOSED, EXT_URL: u.toString() },
        },
        ext,
        proxy,
        async tearDown() {
          await proxy.close();
          await withPgClient(PG.url, async (c) => {
            await c.query(`DROP DATABASE IF EXISTS "${mainDb}" WITH (FORCE)`);
            await c.query(`DROP DATABASE IF EXISTS "${extDb}" WITH (FORCE)`);
          });
          await fs.rm(cwd, { recursive: true, force: true });
        },
      };
    },
    // The main database URL points at a closed port (env.offline); the ext server's proxy counts.
    async hide() {
      return async () => undefined;
    },
  },
];

describe.each(SCENARIOS)('state export and plan --state on $label', (scenario) => {
  let env: Env;
  let proxy: TcpProxy | undefined;
  let tearDown: (() => Promise<void>) | undefined;
  let exported: string;
  let token: string;
  const stateFile = () => path.join(env.cwd, 'state.json');
  const bin = (args: readonly string[], e: NodeJS.ProcessEnv): Promise<CliRun> =>
    runBin(args, { cwd: env.cwd, env: { WIKI_API_KEY, ...e } });

  beforeAll(async () => {
    if (scenario.skip) return;
    const setUp = await scenario.setUp();
    env = setUp.env;
    proxy = setUp.proxy;
    tearDown = setUp.tearDown;
    await useManifests(env.cwd, applied(scenario.backend, setUp.ext));
    const apply = await bin(['apply'], env.online);
    expect(apply.code, apply.stdout + apply.stderr).toBe(0);
    // Emptied data may move to another application (SPEC §8.6); stuck's stays and is refused.
    await scenario.backend.emptyData(env, 'mover');
    const created = await bin(['token', 'create', 'ci'], env.online);
    expect(created.code, created.stderr).toBe(0);
    token = created.stdout.trim();
    // Exported where the databases are reachable, from the main branch's manifests.
    const run = await bin(['state', 'export'], env.online);
    expect(run.code, run.stderr).toBe(0);
    exported = run.stdout;
    await fs.writeFile(stateFile(), exported);
    await useManifests(env.cwd, pullRequest(scenario.backend, setUp.ext));
  }, 120_000);
  afterAll(async () => {
    await tearDown?.();
  });

  it.skipIf(scenario.skip)('exports the records and the servers, and no secret at all', async () => {
    const doc = JSON.parse(exported) as {
      format: string;
      version: number;
      storeId: string;
      hasMainSecret: boolean;
      records: { name: string; hasSecret: boolean }[];
      servers: { databases?: { name: string }[]; schemas?: { name: string }[] }[];
    };
    expect(doc).toMatchObject({ format: 'appvisor-state', version: 1, hasMainSecret: true });
    expect(doc.records.map((r) => r.name).sort()).toEqual(
      ['crm', 'gone', 'kept', 'mover', 'stuck', 'wiki', ...(proxy ? ['ext'] : [])].sort(),
    );
    expect(doc.records.every((r) => r.hasSecret)).toBe(true);
    expect(doc.servers).toHaveLength(proxy ? 2 : 1);

    const dataDir = path.join(env.cwd, 'data');
    const masterKeyText = (await fs.readFile(path.join(dataDir, 'master-key'), 'utf8')).trim();
    const storeUrl = env.online.APPVISOR_DATABASE_URL ?? `sqlite:${path.join(dataDir, 'main.sqlite')}`;
    const store = await openStateStore(storeUrl, { masterKey: await masterKeyIn(dataDir) });
    const secrets: string[] = [];
    try {
      for (const name of ['main', ...doc.records.map((r) => r.name)]) {
        const secret = await store.getSecret(name);
        expect(secret, name).toBeDefined();
        secrets.push(secret!);
      }
    } finally {
      await store.close();
    }
    const forbidden = [...secrets, masterKeyText, token, tokenHash(token), 'hunter2', WIKI_API_KEY];
    for (const value of forbidden) expect(exported).not.toContain(value);
    // Not one value sealed with the master key either (the store keeps secrets and URLs so).
    expect(strings(doc).filter(isSealed)).toEqual([]);
    if (proxy) expect(exported).toContain(':***@127.0.0.1');
  });

  // Only the PostgreSQL scenario has a new-connection app (its URL sealed in the store).
  it.skipIf(scenario.skip || scenario.backend !== SCHEMAS)(
    'without the master key at hand, names a sealed connection by its server, never the sealed value',
    async () => {
      const key = path.join(env.cwd, 'data', 'master-key');
      await fs.rename(key, `${key}.away`);
      try {
        const run = await bin(['state', 'export'], env.online);
        expect(run.code, run.stderr).toBe(0);
        const doc = JSON.parse(run.stdout) as {
          records: { name: string; spec: { database: { connection?: { url: string } } } }[];
        };
        expect(strings(doc).filter(isSealed)).toEqual([]);
        expect(run.stdout).not.toContain('hunter2');
        const ext = doc.records.find((r) => r.name === 'ext');
        expect(ext?.spec.database.connection?.url).toMatch(
          /^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/?$/,
        );
      } finally {
        await fs.rename(`${key}.away`, key);
      }
    },
  );

  it.skipIf(scenario.skip)(
    'plans every kind of step offline as it does online, in every format, with no database reached',
    async () => {
      const online = new Map<string, CliRun>();
      for (const format of FORMATS) online.set(format, await bin(['plan', '--format', format], env.online));
      const json = JSON.parse(online.get('json')!.stdout) as {
        changes: { app: string; action: string; detail: string; dueAt?: string }[];
      };
      const actions = (app: string) => json.changes.filter((c) => c.app === app).map((c) => c.action);
      // The pull request reaches every kind of step.
      expect(actions('blog')).toContain(scenario.backend === SQLITE ? 'create-database' : 'create-schema');
      expect(actions('crm')).toEqual(['update-routes']);
      expect(actions('wiki')).toContain('restart');
      expect(actions('kept')).toEqual(['orphan']);
      expect(actions('gone')).toEqual([
        'orphan',
        scenario.backend === SQLITE ? 'drop-database' : 'drop-schema',
      ]);
      expect(json.changes.find((c) => c.app === 'copycat')).toMatchObject({
        action: 'refuse',
        detail: expect.stringMatching(/belongs to app kept/),
      });
      // A change of application: empty data moves, data the old application migrated is refused.
      expect(json.changes.find((c) => c.app === 'mover' && c.action === 'update-record')?.detail).toMatch(
        /guestbook/,
      );
      expect(json.changes.find((c) => c.app === 'stuck')).toMatchObject({
        action: 'refuse',
        detail: expect.stringMatching(/data belongs to application appvisor-sample/),
      });
      expect(online.get('json')!.code).toBe(2);

      const before = proxy?.connections;
      // The online plans did reach the new-connection server through the proxy.
      if (proxy) expect(before).toBeGreaterThan(0);
      const restore = await scenario.hide(env);
      try {
        for (const format of FORMATS) {
          const offline = await bin(
            ['plan', '--offline', '--state', stateFile(), '--format', format],
            env.offline,
          );
          expect(stable(offline), format).toEqual(stable(online.get(format)!));
        }
        // --state alone is the same offline plan.
        const implicit = await bin(['plan', '--state', stateFile(), '--json'], env.offline);
        expect(stable(implicit)).toEqual(stable(online.get('json')!));
      } finally {
        await restore();
      }
      if (proxy) expect(proxy.connections).toBe(before);
    },
    120_000,
  );
});

describe('state export on a fresh folder, and what plan --state refuses', () => {
  let cwd: string;
  const bin = (args: readonly string[], env: NodeJS.ProcessEnv = {}) => runBin(args, { cwd, env });

  beforeAll(async () => {
    cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-state-export-fresh-'));
    await useManifests(cwd, { 'crm.yaml': manifest('crm') });
  });
  afterAll(() => fs.rm(cwd, { recursive: true, force: true }));

  it('exports a main database that has no store yet, and creates nothing (no store, no master key)', async () => {
    const run = await bin(['state', 'export']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      format: 'appvisor-state',
      version: 1,
      storeId: null,
      hasMainSecret: false,
      records: [],
      servers: [{ dialect: 'sqlite', databases: [], leftovers: [] }],
    });
    await expect(fs.access(path.join(cwd, 'data'))).rejects.toThrow();
    await fs.writeFile(path.join(cwd, 'fresh.json'), run.stdout);
  });

  it('says which steps rest on a server the export does not know, planned as holding nothing', async () => {
    await useManifests(cwd, {
      'crm.yaml': manifest('crm'),
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a manifest's ${VAR}, not a JS template.
      'ext.yaml': manifest('ext', 'database: {mode: new-connection, connection: {url: "${EXT_URL}"}}\n'),
    });
    const env = { EXT_URL: 'postgres://bob:hunter2@127.0.0.1:9/x' };
    try {
      const json = await bin(['plan', '--state', 'fresh.json', '--json'], env);
      expect(json.code, json.stderr).toBe(2);
      const changes = (
        JSON.parse(json.stdout) as { changes: { app: string; action: string; detail: string }[] }
      ).changes;
      const note =
        '(not observed offline: postgres server postgres://bob:***@127.0.0.1:9/x is not in the state export, taken as holding nothing)';
      const ext = changes.filter((c) => c.app === 'ext');
      expect(ext[0]).toMatchObject({ action: 'create-database' });
      expect(ext.every((c) => c.detail.endsWith(note))).toBe(true);
      // What the export did see carries no note.
      expect(changes.filter((c) => c.app === 'crm').every((c) => !c.detail.includes('not observed'))).toBe(
        true,
      );
      for (const format of ['text', 'markdown']) {
        const run = await bin(['plan', '--offline', '--state', 'fresh.json', '--format', format], env);
        expect(run.code, format).toBe(2);
        expect(run.stdout, format).toContain('not observed offline: postgres server postgres://bob:');
        expect(run.stdout + run.stderr, format).not.toContain('hunter2');
      }
    } finally {
      await useManifests(cwd, { 'crm.yaml': manifest('crm') });
    }
  });

  it.each([
    [
      'not JSON',
      'hello',
      /state file bad\.json: not complete JSON \(.*\); make it with `appvisor state export > FILE`/,
    ],
    [
      'cut short',
      (text: string) => text.slice(0, text.length / 2),
      /state file bad\.json: not complete JSON/,
    ],
    [
      'another format',
      '{"format": "terraform", "version": 1}',
      /not an appvisor state export \(no "format": "appvisor-state"\)/,
    ],
    [
      'another version',
      (text: string) => text.replace('"version": 1', '"version": 7'),
      /version 7, this appvisor reads version 1; export it again with this appvisor/,
    ],
    [
      'a field missing',
      (text: string) => JSON.stringify({ ...JSON.parse(text), servers: undefined }),
      /"servers" is missing or not a list of servers; export it again/,
    ],
  ] as const)(
    'a state file that is %s is a clear error, exit 1, nothing planned',
    async (_label, content, message) => {
      const fresh = await fs.readFile(path.join(cwd, 'fresh.json'), 'utf8');
      await fs.writeFile(path.join(cwd, 'bad.json'), typeof content === 'string' ? content : content(fresh));
      const run = await bin(['plan', '--offline', '--state', 'bad.json']);
      expect(run).toMatchObject({ code: 1, stdout: '' });
      expect(run.stderr).toMatch(/^appvisor: /);
      expect(run.stderr).toMatch(message);
    },
  );

  it('a missing state file, and --offline without --state, say how to make one', async () => {
    const missing = await bin(['plan', '--state', 'nope.json']);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toContain(
      'state file nope.json: cannot be read (no such file); make it with `appvisor state export > nope.json`',
    );
    const offline = await bin(['plan', '--offline']);
    expect(offline).toMatchObject({ code: 1, stdout: '' });
    expect(offline.stderr).toContain('make one with `appvisor state export > state.json`');
  });
});

describe('a main database holding tables appvisor did not create', () => {
  let cwd: string;

  beforeAll(async () => {
    cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-state-export-foreign-'));
    await useManifests(cwd, { 'crm.yaml': manifest('crm') });
    await fs.mkdir(path.join(cwd, 'data'));
    const db = new Database(path.join(cwd, 'data', 'main.sqlite'));
    db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)');
    db.close();
  });
  afterAll(() => fs.rm(cwd, { recursive: true, force: true }));

  it('refuses offline what a first install would refuse online, and not with mainDatabase.adopt', async () => {
    const online = await runBin(['plan', '--json'], { cwd });
    expect(online.code).toBe(2);
    expect(JSON.parse(online.stdout).changes[0]).toMatchObject({ app: 'main', action: 'refuse' });
    const exported = await runBin(['state', 'export'], { cwd });
    expect(exported.code, exported.stderr).toBe(0);
    await fs.writeFile(path.join(cwd, 'state.json'), exported.stdout);
    const offline = await runBin(['plan', '--offline', '--state', 'state.json', '--json'], { cwd });
    expect(offline).toEqual(online);
    await fs.writeFile(path.join(cwd, 'appvisor.yaml'), 'mainDatabase: {adopt: true}\n');
    const adopted = await runBin(['plan', '--offline', '--state', 'state.json', '--json'], { cwd });
    expect(adopted).toEqual(await runBin(['plan', '--json'], { cwd }));
    expect(JSON.parse(adopted.stdout).changes.some((c: { action: string }) => c.action === 'refuse')).toBe(
      false,
    );
  });
});
