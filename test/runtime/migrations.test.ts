import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import type { SqlClient } from '../../src/providers/provider.js';
import type { Migration } from '../../src/runtime/contract.js';
import {
  DATA_VERSION_TABLE,
  migrate,
  planMigrations,
  readDataVersion,
} from '../../src/runtime/migrations.js';
import { migrations as sampleMigrations } from '../../src/sample-app/migrations.js';
import { Store } from '../../src/sample-app/store.js';
import {
  APP_DB_MODES,
  type AppDbFixture,
  createAppDatabase,
  modeAvailable,
} from '../helpers/app-databases.js';

const available = Object.fromEntries(
  await Promise.all(APP_DB_MODES.map(async (mode) => [mode, await modeAvailable(mode)] as const)),
);

const upTo = (version: number) => sampleMigrations.filter((m) => m.version <= version);

function errorOf(promise: Promise<unknown>): Promise<AppvisorError> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(AppvisorError);
      return err as AppvisorError;
    },
  );
}

describe.each(APP_DB_MODES)('sample app migrations on %s', (mode) => {
  if (!available[mode]) {
    // Only when the server is unreachable (with CI=true the probe fails the run instead): the
    // placeholder keeps the reason in the report.
    it.skip(`needs a ${mode} server`, () => {});
    return;
  }
  let fx: AppDbFixture;
  let db: SqlClient;

  beforeEach(async () => {
    fx = await createAppDatabase(mode);
    db = fx.database.client;
  });
  afterEach(async () => {
    await fx.dispose();
  });

  it('installs a fresh database to v2, even with upgrade: false', async () => {
    expect(await readDataVersion(db)).toBeUndefined();
    const result = await migrate(db, sampleMigrations, { app: 'x', targetVersion: 2, allowUpgrade: false });
    expect(result.from).toBe(0);
    expect(result.to).toBe(2);
    expect(result.applied.map((m) => m.version)).toEqual([1, 2]);
    expect(await readDataVersion(db)).toBe(2);

    const store = new Store(db);
    await store.createUser('alice', 'hash');
    const alice = await store.findUser('alice');
    expect((await store.addNote(alice!.id, 'hello')).text).toBe('hello');
  });

  it.skipIf(mode === 'sqlite')(
    'runs each migration once when two processes migrate the same data at once (replicas booting together)',
    async () => {
      const other = fx.open();
      const counted = sampleMigrations.map((m) => ({ ...m, up: vi.fn(m.up) }));
      const runs = await Promise.all(
        [db, other].map((client) =>
          migrate(client, counted, { app: 'x', targetVersion: 2, allowUpgrade: false }),
        ),
      );
      for (const m of counted) expect(m.up).toHaveBeenCalledTimes(1);
      expect(runs.flatMap((r) => r.applied.map((a) => a.version)).sort()).toEqual([1, 2]);
      expect(await readDataVersion(db)).toBe(2);
    },
  );

  it('runs nothing when the data is current', async () => {
    await migrate(db, sampleMigrations, { app: 'x', targetVersion: 2, allowUpgrade: true });
    const onStart = vi.fn();
    const again = await migrate(db, sampleMigrations, {
      app: 'x',
      targetVersion: 2,
      allowUpgrade: true,
      onStart,
    });
    expect(again).toEqual({ from: 2, to: 2, applied: [] });
    expect(onStart).not.toHaveBeenCalled();
  });

  it('upgrades v1 data to v2 and keeps the users', async () => {
    await migrate(db, upTo(1), { app: 'x', targetVersion: 1, allowUpgrade: false });
    expect(await readDataVersion(db)).toBe(1);
    await new Store(db).createUser('alice', 'hash-a');

    // A restart with newer code: a new client on the same database.
    const next = fx.open();
    const onStart = vi.fn();
    const result = await migrate(next, sampleMigrations, {
      app: 'x',
      targetVersion: 2,
      allowUpgrade: true,
      onStart,
    });
    expect(result.from).toBe(1);
    expect(result.applied.map((m) => m.version)).toEqual([2]);
    expect(onStart).toHaveBeenCalledWith(expect.objectContaining({ kind: 'upgrade', from: 1, to: 2 }));
    const store = new Store(next);
    const alice = await store.findUser('alice');
    expect(alice).toMatchObject({ username: 'alice', passwordHash: 'hash-a' });
    await store.addNote(alice!.id, 'after the upgrade');
    expect((await store.listNotes(alice!.id)).map((n) => n.text)).toEqual(['after the upgrade']);
  });

  it('refuses v1 data with upgrade: false (APP_NEEDS_UPGRADE) and changes nothing', async () => {
    await migrate(db, upTo(1), { app: 'x', targetVersion: 1, allowUpgrade: false });
    const err = await errorOf(
      migrate(db, sampleMigrations, { app: 'x', targetVersion: 2, allowUpgrade: false }),
    );
    expect(err.code).toBe('APP_NEEDS_UPGRADE');
    expect(err.status).toBe(503);
    expect(err.params).toMatchObject({ app: 'x', dataVersion: 1, codeVersion: 2 });
    expect(await readDataVersion(db)).toBe(1);
    await expect(db.query('SELECT id FROM notes')).rejects.toThrow();
  });

  it('refuses data newer than the code (APP_DATA_NEWER)', async () => {
    const v3: Migration = { version: 3, description: 'future', up: async () => undefined };
    await migrate(db, [...sampleMigrations, v3], { app: 'x', targetVersion: 3, allowUpgrade: true });
    const err = await errorOf(
      migrate(db, sampleMigrations, { app: 'x', targetVersion: 2, allowUpgrade: true }),
    );
    expect(err.code).toBe('APP_DATA_NEWER');
    expect(err.params).toMatchObject({ app: 'x', dataVersion: 3, codeVersion: 2 });
    expect(await readDataVersion(db)).toBe(3);
  });

  it('has migrations that can run twice (MySQL commits DDL as it goes)', async () => {
    for (const m of sampleMigrations) await m.up(db);
    for (const m of sampleMigrations) await m.up(db);
    expect(await readDataVersion(db)).toBeUndefined();
  });

  it('keeps usernames unique and case-sensitive', async () => {
    await migrate(db, sampleMigrations, { app: 'x', targetVersion: 2, allowUpgrade: true });
    const store = new Store(db);
    await store.createUser('alice', 'h');
    await store.createUser('Alice', 'h');
    await expect(store.createUser('alice', 'h')).rejects.toThrow(/taken/);
  });

  it.runIf(mode === 'postgres-schema')('creates every table in the app schema, none in public', async () => {
    await migrate(db, sampleMigrations, { app: 'x', targetVersion: 2, allowUpgrade: true });
    const schema = fx.database.connection.schema!;
    const rows = await db.query<{ table_schema: string; table_name: string }>(
      "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN (?, 'public') ORDER BY table_name",
      [schema],
    );
    expect(rows).toEqual(
      [DATA_VERSION_TABLE, 'notes', 'users'].map((table_name) => ({ table_schema: schema, table_name })),
    );
  });
});

describe('the migration runner (SQLite)', () => {
  let fx: AppDbFixture;
  let db: SqlClient;

  beforeEach(async () => {
    fx = await createAppDatabase('sqlite');
    db = fx.database.client;
  });
  afterEach(async () => {
    await fx.dispose();
  });

  const createTable = (version: number, table: string): Migration => ({
    version,
    description: `create ${table}`,
    up: (tx) => tx.exec(`CREATE TABLE ${table} (id INTEGER)`),
  });

  it('rolls a failed migration back and resumes there on the next run', async () => {
    const broken: Migration = {
      version: 2,
      description: 'broken',
      up: async (tx) => {
        await tx.exec('CREATE TABLE t2 (id INTEGER)');
        throw new Error('boom');
      },
    };
    await expect(
      migrate(db, [createTable(1, 't1'), broken], { app: 'x', targetVersion: 2, allowUpgrade: true }),
    ).rejects.toThrow('boom');
    expect(await readDataVersion(db)).toBe(1);
    expect(await db.query("SELECT name FROM sqlite_master WHERE name = 't2'")).toEqual([]);

    const fixed = await migrate(db, [createTable(1, 't1'), createTable(2, 't2')], {
      app: 'x',
      targetVersion: 2,
      allowUpgrade: true,
    });
    expect(fixed.from).toBe(1);
    expect(fixed.applied.map((m) => m.version)).toEqual([2]);
  });

  it('records a code version above the last migration', async () => {
    const result = await migrate(db, [createTable(1, 't1')], {
      app: 'x',
      targetVersion: 3,
      allowUpgrade: true,
    });
    expect(result.applied.map((m) => m.version)).toEqual([1]);
    expect(await readDataVersion(db)).toBe(3);
  });

  it('treats an empty version table as a fresh database', async () => {
    await db.exec(`CREATE TABLE ${DATA_VERSION_TABLE} (version INTEGER NOT NULL)`);
    expect(await readDataVersion(db)).toBe(0);
    const result = await migrate(db, [createTable(1, 't1')], {
      app: 'x',
      targetVersion: 1,
      allowUpgrade: false,
    });
    expect(result.applied.map((m) => m.version)).toEqual([1]);
  });

  it('keeps one row in the version table', async () => {
    await migrate(db, [createTable(1, 't1'), createTable(2, 't2')], {
      app: 'x',
      targetVersion: 4,
      allowUpgrade: true,
    });
    expect(await db.query(`SELECT version FROM ${DATA_VERSION_TABLE}`)).toEqual([{ version: 4 }]);
  });
});

describe('planMigrations', () => {
  const ms: Migration[] = [1, 2, 3].map((version) => ({
    version,
    description: `m${version}`,
    up: async () => {},
  }));

  it.each([
    { data: undefined, target: 3, allow: false, kind: 'install', pending: [1, 2, 3] },
    { data: 0, target: 2, allow: false, kind: 'install', pending: [1, 2] },
    { data: 1, target: 3, allow: true, kind: 'upgrade', pending: [2, 3] },
    { data: 3, target: 3, allow: false, kind: 'current', pending: [] },
    { data: 2, target: 5, allow: true, kind: 'upgrade', pending: [3] },
  ])(
    'data $data, code $target, upgrade $allow -> $kind $pending',
    ({ data, target, allow, kind, pending }) => {
      const plan = planMigrations(data, ms, { app: 'x', targetVersion: target, allowUpgrade: allow });
      expect(plan.kind).toBe(kind);
      expect(plan.pending.map((m) => m.version)).toEqual(pending);
    },
  );

  it.each([
    { data: 1, target: 3, allow: false, code: 'APP_NEEDS_UPGRADE' },
    { data: 4, target: 3, allow: true, code: 'APP_DATA_NEWER' },
    { data: 4, target: 3, allow: false, code: 'APP_DATA_NEWER' },
  ])('data $data, code $target, upgrade $allow -> $code', ({ data, target, allow, code }) => {
    expect(() => planMigrations(data, ms, { app: 'x', targetVersion: target, allowUpgrade: allow })).toThrow(
      expect.objectContaining({ code }),
    );
  });
});
