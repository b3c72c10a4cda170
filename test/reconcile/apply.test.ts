/**
 * plan → apply → plan, end to end on real servers: the manifests, the state store, the
 * providers and the lock together, as `appvisor plan` / `appvisor apply` run them.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { createProvider } from '../../src/providers/index.js';
import { applyPlan, computePlan } from '../../src/reconcile/commands.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import { openStateStore } from '../../src/state/store.js';
import { mysqlServer, postgres, uniqueName } from '../helpers/servers.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const PG = await postgres();
const MY = await mysqlServer();
const log = pino({ level: 'silent' });

interface Dialect {
  readonly name: 'sqlite' | 'postgres' | 'mysql';
  readonly available: boolean;
  /** Creates a fresh main database; returns its URL. */
  mainUrl(dir: string): Promise<string>;
  /** Drops every database created by this run with the given prefix. */
  cleanup(prefix: string, mainUrl: string): Promise<void>;
  /** Whether a database exists on the server. */
  exists(name: string, mainUrl: string): Promise<boolean>;
  /** Creates a database outside appvisor. */
  createForeign(name: string, mainUrl: string): Promise<void>;
}

function pgAdmin(): pg.Client {
  return new pg.Client({ connectionString: PG.url });
}

const DIALECTS: Dialect[] = [
  {
    name: 'sqlite',
    available: true,
    mainUrl: async (dir) => `sqlite:${path.join(dir, 'data', 'main.sqlite')}`,
    cleanup: async () => undefined,
    exists: async (name, mainUrl) =>
      fs
        .access(path.join(path.dirname(mainUrl.slice('sqlite:'.length)), 'apps', `${name}.sqlite`))
        .then(() => true)
        .catch(() => false),
    createForeign: async (name, mainUrl) => {
      const dir = path.join(path.dirname(mainUrl.slice('sqlite:'.length)), 'apps');
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, `${name}.sqlite`), '');
    },
  },
  {
    name: 'postgres',
    available: PG.available,
    mainUrl: async () => {
      const db = uniqueName('avmain');
      const c = pgAdmin();
      await c.connect();
      await c.query(`CREATE DATABASE ${db}`);
      await c.end();
      const u = new URL(PG.url);
      u.pathname = `/${db}`;
      return u.toString();
    },
    cleanup: async (prefix, mainUrl) => {
      const c = pgAdmin();
      await c.connect();
      const main = new URL(mainUrl).pathname.slice(1);
      const { rows } = await c.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname = $2`,
        [`${prefix}%`, main],
      );
      for (const r of rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
      await c.end();
    },
    exists: async (name) => {
      const c = pgAdmin();
      await c.connect();
      const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      await c.end();
      return rowCount === 1;
    },
    createForeign: async (name) => {
      const c = pgAdmin();
      await c.connect();
      await c.query(`CREATE DATABASE "${name}"`);
      await c.end();
    },
  },
  {
    name: 'mysql',
    available: MY.available,
    mainUrl: async () => {
      const db = uniqueName('avmain');
      const c = await mysql.createConnection({ uri: MY.url });
      await c.query(`CREATE DATABASE \`${db}\``);
      await c.end();
      const u = new URL(MY.url);
      u.pathname = `/${db}`;
      return u.toString();
    },
    cleanup: async (prefix, mainUrl) => {
      const c = await mysql.createConnection({ uri: MY.url });
      const main = new URL(mainUrl).pathname.slice(1);
      const [rows] = await c.query<mysql.RowDataPacket[]>(
        'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? OR SCHEMA_NAME = ?',
        [`${prefix}%`, main],
      );
      for (const r of rows) await c.query(`DROP DATABASE IF EXISTS \`${r.n}\``);
      await c.end();
    },
    exists: async (name) => {
      const c = await mysql.createConnection({ uri: MY.url });
      const [rows] = await c.query<mysql.RowDataPacket[]>(
        'SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [name],
      );
      await c.end();
      return rows.length === 1;
    },
    createForeign: async (name) => {
      const c = await mysql.createConnection({ uri: MY.url });
      await c.query(`CREATE DATABASE \`${name}\``);
      await c.end();
    },
  },
];

function manifest(name: string, extra = ''): string {
  return `apiVersion: appvisor/v1\nkind: App\nname: ${name}\n${extra}`;
}

describe.each(DIALECTS)('plan and apply on $name', (dialect) => {
  let dir: string;
  let appsDir: string;
  let settings: Settings;
  let prefix: string;
  let mainUrl: string;
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(async (ctx) => {
    if (!dialect.available) ctx.skip();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-apply-'));
    appsDir = path.join(dir, 'apps.d');
    await fs.mkdir(appsDir);
    // App and database names unique to this test, so parallel runs never collide.
    prefix = `t${Math.random().toString(36).slice(2, 8)}`;
    mainUrl = await dialect.mainUrl(dir);
    settings = {
      listen: { host: '127.0.0.1', port: 0 },
      appsDir,
      dataDir: path.join(dir, 'data'),
      database: { url: mainUrl },
      app: undefined,
      discoveryAdapter: 'local',
      processAdapter: 'local',
      configFile: undefined,
    };
  });

  afterEach(async () => {
    if (!dialect.available) return;
    for (const fn of cleanups.splice(0)) await fn();
    await dialect.cleanup(prefix, mainUrl);
    await fs.rm(dir, { recursive: true, force: true });
  });

  const write = (file: string, text: string) => fs.writeFile(path.join(appsDir, file), text);
  const actions = (p: Awaited<ReturnType<typeof computePlan>>) =>
    p.changes.map((c) => `${c.app} ${c.action}`);

  it('creates exactly the planned databases, then has nothing to do; removal orphans, restore converges', async () => {
    const a = `${prefix}-a`;
    const b = `${prefix}_b`;
    await write('a.yaml', manifest(a, 'startMode: with-main\n'));
    await write('b.yaml', manifest(b, 'jwt: {secret: shared}\n'));

    const first = await computePlan(settings);
    expect(actions(first)).toEqual([
      'main generate-secret',
      `${a} create-database`,
      `${a} generate-secret`,
      `${a} create-record`,
      `${a} upgrade`,
      `${a} start`,
      `${b} create-database`,
      `${b} create-record`,
      `${b} upgrade`,
    ]);
    // plan changed nothing anywhere.
    expect(await dialect.exists(a.replace(/-/g, '_'), mainUrl)).toBe(false);

    const report = await applyPlan(settings, { log });
    expect(report.failures).toEqual([]);
    expect(await dialect.exists(a.replace(/-/g, '_'), mainUrl)).toBe(true);
    expect(await dialect.exists(b, mainUrl)).toBe(true);
    expect(report.outcomes.find((o) => o.step.action === 'start')?.result).toBe('skipped');

    expect(actions(await computePlan(settings))).toEqual([]);
    const again = await applyPlan(settings, { log });
    expect(again.outcomes).toEqual([]);

    // The secret stays the same across runs.
    const store = await openStateStore(mainUrl);
    const secret = await store.getSecret(a);
    await store.close();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{40,}$/);

    await fs.rm(path.join(appsDir, 'b.yaml'));
    const removal = await computePlan(settings);
    expect(actions(removal)).toEqual([`${b} orphan`]);
    expect(removal.changes[0]?.detail).toContain('data and secret kept');
    await applyPlan(settings, { log });
    expect(await dialect.exists(b, mainUrl)).toBe(true);

    await write('b.yaml', manifest(b, 'jwt: {secret: shared}\n'));
    expect(actions(await computePlan(settings))).toEqual([`${b} create-record`]);
    await applyPlan(settings, { log });
    expect(actions(await computePlan(settings))).toEqual([]);

    const store2 = await openStateStore(mainUrl);
    expect(await store2.getSecret(a)).toBe(secret);
    expect((await store2.getRecord(b))?.status).toBe('stopped');
    expect((await store2.listHistory(b)).map((h) => h.outcome)).toEqual(['created', 'deleted', 'created']);
    await store2.close();
  });

  it('refuses a foreign database without adopt: true, and adopts it with it; never drops an adopted one', async () => {
    const name = `${prefix}f`;
    await dialect.createForeign(name, mainUrl);
    await write('f.yaml', manifest(name, 'deletionPolicy: drop\n'));
    const refused = await computePlan(settings);
    expect(refused.changes.filter((c) => c.app === name).map((c) => [c.action, c.code])).toEqual([
      ['refuse', 'ADOPT_REFUSED'],
    ]);
    const failed = await applyPlan(settings, { log });
    expect(failed.failures).toMatchObject([{ app: name, code: 'ADOPT_REFUSED' }]);

    await write('f.yaml', manifest(name, 'deletionPolicy: drop\ndatabase: {adopt: true}\n'));
    expect(actions(await computePlan(settings))).toContain(`${name} adopt-database`);
    expect((await applyPlan(settings, { log })).failures).toEqual([]);

    await fs.rm(path.join(appsDir, 'f.yaml'));
    await write('keep.yaml', manifest(`${prefix}k`));
    const removal = await computePlan(settings);
    expect(removal.changes.filter((c) => c.app === name).map((c) => [c.action, c.code ?? ''])).toEqual([
      ['refuse', 'DROP_REFUSED'],
      ['orphan', ''],
    ]);
    await applyPlan(settings, { log });
    expect(await dialect.exists(name, mainUrl)).toBe(true);
  });

  it('drops only what it created, with deletionPolicy: drop', async () => {
    const name = `${prefix}d`;
    await write('d.yaml', manifest(name, 'deletionPolicy: drop\n'));
    await write('keep.yaml', manifest(`${prefix}k`));
    await applyPlan(settings, { log });
    expect(await dialect.exists(name, mainUrl)).toBe(true);
    await fs.rm(path.join(appsDir, 'd.yaml'));
    expect(actions(await computePlan(settings))).toEqual([`${name} orphan`, `${name} drop-database`]);
    expect((await applyPlan(settings, { log })).failures).toEqual([]);
    expect(await dialect.exists(name, mainUrl)).toBe(false);
    expect(actions(await computePlan(settings))).toEqual([]);
  });

  it('holds back removals when every manifest is gone (empty-set guard), unless allowed', async () => {
    const name = `${prefix}g`;
    await write('g.yaml', manifest(name));
    await applyPlan(settings, { log });
    await fs.rm(path.join(appsDir, 'g.yaml'));
    const guarded = await computePlan(settings);
    expect(guarded.changes).toEqual([]);
    expect(guarded.guard).toMatch(/no valid manifest is left/);
    await applyPlan(settings, { log });
    const store = await openStateStore(mainUrl);
    expect((await store.getRecord(name))?.status).toBe('stopped');
    await store.close();
    expect(actions(await computePlan(settings, { allowEmpty: true }))).toEqual([`${name} orphan`]);
  });

  it('recognises a database its own interrupted run created, without adopting anything foreign', async () => {
    const name = `${prefix}c`;
    await write('c.yaml', manifest(name));
    // A first apply that got as far as the state store's creation, then "crashed" after CREATE
    // DATABASE: the object carries our marker but no record mentions it.
    const store = await openStateStore(mainUrl);
    await store.ensureSecret('main', 'x'.repeat(64));
    const provider = createProvider(mainUrl, { dataDir: settings.dataDir });
    await provider.createDatabase(name, ownerMarker(store.storeId, name));
    await provider.close();
    await store.close();

    const p = await computePlan(settings);
    expect(actions(p).filter((a) => a.startsWith(name))).toEqual([
      `${name} generate-secret`,
      `${name} create-record`,
      `${name} upgrade`,
    ]);
    expect((await applyPlan(settings, { log })).failures).toEqual([]);
    const after = await openStateStore(mainUrl);
    expect((await after.getRecord(name))?.inventory).toMatchObject([{ name, state: 'created' }]);
    await after.close();
    expect(actions(await computePlan(settings))).toEqual([]);
  });

  it('two applies at once: one waits for the other, nothing is created twice', async () => {
    for (const n of ['x', 'y', 'z']) await write(`${n}.yaml`, manifest(`${prefix}${n}`));
    const [r1, r2] = await Promise.all([applyPlan(settings, { log }), applyPlan(settings, { log })]);
    expect([...r1.failures, ...r2.failures]).toEqual([]);
    const creates = [...r1.outcomes, ...r2.outcomes].filter((o) => o.step.action === 'create-database');
    expect(creates.map((o) => o.result)).toEqual(['created', 'created', 'created']);
    expect(actions(await computePlan(settings))).toEqual([]);
  });
});

describe.skipIf(!PG.available)('apply while PostgreSQL is unreachable', () => {
  const prefix = `t${Math.random().toString(36).slice(2, 8)}`;
  const created: string[] = [];

  afterAll(async () => {
    const c = pgAdmin();
    await c.connect();
    for (const db of created) await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await c.end();
  });

  it('fails clearly, records nothing half-done, and the next run converges', async () => {
    const mainDb = uniqueName('avmain');
    created.push(mainDb, `${prefix}o`);
    const admin = pgAdmin();
    await admin.connect();
    await admin.query(`CREATE DATABASE ${mainDb}`);
    await admin.end();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(PG.url).port || 5432));
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-outage-'));
    try {
      const u = new URL(proxy.url(PG.url));
      u.pathname = `/${mainDb}`;
      const settings: Settings = {
        listen: { host: '127.0.0.1', port: 0 },
        appsDir: path.join(dir, 'apps.d'),
        dataDir: path.join(dir, 'data'),
        database: { url: u.toString() },
        app: undefined,
        discoveryAdapter: 'local',
        processAdapter: 'local',
        configFile: undefined,
      };
      await fs.mkdir(settings.appsDir);
      await fs.writeFile(path.join(settings.appsDir, 'o.yaml'), manifest(`${prefix}o`));
      proxy.cut();
      await expect(applyPlan(settings, { log, lockWaitMs: 1000 })).rejects.toMatchObject({
        code: 'DB_UNREACHABLE',
      });
      proxy.restore();
      const report = await applyPlan(settings, { log });
      expect(report.failures).toEqual([]);
      expect((await computePlan(settings)).changes).toEqual([]);
    } finally {
      await proxy.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
