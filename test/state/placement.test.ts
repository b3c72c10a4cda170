/**
 * PostgreSQL: the state store lives in its own schema `appvisor`. A store an older appvisor left
 * in `public` is moved there on open — once, whoever opens it at the same time — keeping its
 * records, secrets, history and store id; `plan`'s reader reads it wherever it is and moves or
 * creates nothing.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { computePlan } from '../../src/reconcile/commands.js';
import { columnTypes, STORE_SCHEMA, TABLES } from '../../src/state/dialect.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/state/migrations.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore } from '../../src/state/store.js';
import type { StateReader, StateStore } from '../../src/state/types.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
import { dropPgRole, uniqueName } from '../helpers/servers.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';
import { historyEntry, minimalRecord, stored } from './fixtures.js';

const pgUnderTest = (await dialectsUnderTest()).find((d) => d.dialect === 'postgres')!;
const STORE_TABLES = Object.values(TABLES).sort();
/** The store's tables and its one sequence, in the schema appvisor. */
const IN_STORE_SCHEMA = [...STORE_TABLES, 'appvisor_history_id_seq']
  .map((r) => `${STORE_SCHEMA}.${r}`)
  .sort();
const LEGACY_ID = 'legacy0123456789';
const SECRET = 'the-secret-of-crm-0123456789';

/** What appvisor with layout v2 left behind: its tables in `public`, written with its own SQL. */
async function legacyStore(db: TestDatabase): Promise<void> {
  await db.sql('CREATE TABLE public.appvisor_meta (k TEXT NOT NULL PRIMARY KEY, v TEXT NOT NULL)');
  // The admin connection's search_path is the default one (public), as the old store's was.
  for (const migration of MIGRATIONS.filter((m) => m.version <= 2)) {
    for (const step of migration.steps('postgres', columnTypes('postgres'))) await db.sql(step);
  }
  await db.sql("INSERT INTO public.appvisor_meta (k, v) VALUES ('schema_version', '2'), ('store_id', ?)", [
    LEGACY_ID,
  ]);
  const record = minimalRecord('crm');
  await db.sql(
    `INSERT INTO public.appvisor_apps (name, file, spec, spec_hash, inventory, has_secret, status, created_at, updated_at)
     VALUES (?, ?, ?, ?, '[]', 0, ?, ?, ?)`,
    [
      record.name,
      record.file,
      JSON.stringify(record.spec),
      record.specHash,
      record.status,
      record.createdAt,
      record.updatedAt,
    ],
  );
  await db.sql("INSERT INTO public.appvisor_secrets (name, secret, created_at) VALUES ('crm', ?, 'then')", [
    SECRET,
  ]);
  const entry = historyEntry('crm', 1);
  await db.sql(
    `INSERT INTO public.appvisor_history (app, reconcile_id, at, outcome, steps, duration_ms)
     VALUES (?, ?, ?, ?, ?, ?)`,
    [entry.app, entry.reconcileId, entry.at, entry.outcome, JSON.stringify(entry.steps), entry.durationMs],
  );
}

/** `schema.table` of every table and sequence outside the system schemas. */
async function relations(db: TestDatabase): Promise<string[]> {
  const rows = await db.sql(
    `SELECT n.nspname || '.' || c.relname AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      ORDER BY 1`,
  );
  return rows.map((row) => String(row.r));
}

/** `appvisor plan` on `db` with one manifest (crm, whose record the legacy store holds). */
async function plan(db: TestDatabase): Promise<string[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-placement-'));
  try {
    const appsDir = path.join(dir, 'apps.d');
    await fs.mkdir(appsDir);
    await fs.writeFile(path.join(appsDir, 'crm.yaml'), 'apiVersion: appvisor/v1\nkind: App\nname: crm\n');
    const settings: Settings = {
      listen: { host: '127.0.0.1', port: 0 },
      appsDir,
      dataDir: path.join(dir, 'data'),
      database: { url: db.url },
      app: undefined,
      discoveryAdapter: 'local',
      processAdapter: 'local',
      deletionGraceMs: 86_400_000,
      configFile: undefined,
    };
    return (await computePlan(settings)).changes.map((c) => `${c.app} ${c.action}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function schemaExists(db: TestDatabase, name: string): Promise<boolean> {
  return (await db.sql('SELECT 1 FROM pg_namespace WHERE nspname = ?', [name])).length === 1;
}

/** Every relation and every row of the store's tables, wherever they are. */
async function snapshot(db: TestDatabase, schema: string): Promise<unknown> {
  const rows: Record<string, unknown> = {};
  // A legacy store (left in public by an older appvisor) has only the tables of its day.
  const present = new Set((await relations(db)).map((r) => r.split('.')[1]));
  for (const table of STORE_TABLES.filter((t) => present.has(t)))
    rows[table] = await db.sql(`SELECT * FROM ${schema}.${table} ORDER BY 1`);
  return { relations: await relations(db), rows };
}

describe.skipIf(!pgUnderTest.available)('state store schema on PostgreSQL', () => {
  let db: TestDatabase;
  const opened: (StateStore | StateReader)[] = [];
  const roles: string[] = [];
  const open = async (): Promise<StateStore> => {
    const store = await openStateStore(db.url, { masterKey: TEST_MASTER_KEY });
    opened.push(store);
    return store;
  };
  const read = async (): Promise<StateReader> => {
    const reader = await openStateReader(db.url);
    opened.push(reader);
    return reader;
  };

  beforeEach(async () => {
    db = await pgUnderTest.create();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await db.drop();
    for (const role of roles.splice(0)) await dropPgRole(role);
  });

  it('creates the schema appvisor and its tables there, none in public', async () => {
    await open();
    expect(await relations(db)).toEqual(IN_STORE_SCHEMA);
  });

  it('moves a store left in public into appvisor on open, keeping records, secrets, history and id', async () => {
    await legacyStore(db);

    const before = await read();
    expect(before.storeId).toBe(LEGACY_ID);
    expect(await before.getRecord('crm')).toEqual(stored(minimalRecord('crm')));
    expect(await before.getSecret('crm')).toBe(SECRET);
    expect(await before.listHistory('crm')).toEqual([historyEntry('crm', 1)]);

    const store = await open();
    expect(store.storeId).toBe(LEGACY_ID);
    expect(await relations(db)).toEqual(IN_STORE_SCHEMA);
    expect(await store.getRecord('crm')).toMatchObject(minimalRecord('crm'));
    expect(await store.getSecret('crm')).toBe(SECRET);
    // The id sequence moved along: new entries still number on.
    await store.finishRun(undefined, historyEntry('crm', 2), await store.beginTerm());
    expect((await store.listHistory('crm')).map((e) => e.reconcileId)).toEqual(['r2', 'r1']);
    const meta = await db.sql(`SELECT v FROM ${db.store(TABLES.meta)} WHERE k = 'schema_version'`);
    expect(meta).toEqual([{ v: String(SCHEMA_VERSION) }]);

    // A reader opened before the move follows it; a new one finds the store in its new place.
    expect((await before.listHistory('crm')).map((e) => e.reconcileId)).toEqual(['r2', 'r1']);
    const after = await read();
    expect(after.storeId).toBe(LEGACY_ID);
    // Sealed on open (SPEC §8.5): the reader, which has no key, sees only the sealed text.
    expect(await after.getSecret('crm')).toMatch(/^av1:/);
    expect((await after.getRecord('crm'))?.name).toBe('crm');
  });

  it('moves a store left in public once when several processes open it at once', async () => {
    await legacyStore(db);
    const stores = await Promise.all(Array.from({ length: 4 }, () => open()));
    expect(new Set(stores.map((s) => s.storeId))).toEqual(new Set([LEGACY_ID]));
    expect(await relations(db)).toEqual(IN_STORE_SCHEMA);
    expect(await stores[3]!.getSecret('crm')).toBe(SECRET);
  });

  it('leaves a store in public where it is under plan, creating no schema', async () => {
    await legacyStore(db);
    const before = await snapshot(db, 'public');
    // The record is read (no create-record), and crm's database is missing.
    expect(await plan(db)).toContain('crm create-database');
    expect(await plan(db)).not.toContain('crm create-record');
    expect(await snapshot(db, 'public')).toEqual(before);
    expect(await schemaExists(db, STORE_SCHEMA)).toBe(false);
  });

  it('changes nothing under plan once moved', async () => {
    await legacyStore(db);
    await (await open()).close();
    const before = await snapshot(db, STORE_SCHEMA);
    expect(await plan(db)).not.toContain('crm create-record');
    const reader = await read();
    expect(reader.storeId).toBe(LEGACY_ID);
    // The open sealed the legacy plaintext secret; the reader (no key) sees only the sealed text.
    expect(await reader.getSecret('crm')).toMatch(/^av1:/);
    expect(await reader.listHistory('crm')).toHaveLength(1);
    await reader.close();
    expect(await snapshot(db, STORE_SCHEMA)).toEqual(before);
  });

  it('uses a schema appvisor created for a user who may not create schemas', async () => {
    const role = uniqueName('avt_role');
    roles.push(role);
    const url = new URL(db.url);
    await db.sql(`CREATE ROLE ${role} LOGIN`);
    await db.sql(`REVOKE CREATE ON DATABASE ${url.pathname.slice(1)} FROM PUBLIC`);
    await db.sql(`CREATE SCHEMA ${STORE_SCHEMA} AUTHORIZATION ${role}`);
    url.username = role;
    const store = await openStateStore(url.href, { masterKey: TEST_MASTER_KEY });
    opened.push(store);
    await store.ensureMainSecret(SECRET);
    expect(await relations(db)).toEqual(IN_STORE_SCHEMA);
  });

  it('reads a database without a store as empty, creating no schema', async () => {
    const reader = await read();
    expect(reader.storeId).toBeUndefined();
    expect(await reader.listRecords()).toEqual([]);
    await reader.close();
    expect(await schemaExists(db, STORE_SCHEMA)).toBe(false);
  });
});
