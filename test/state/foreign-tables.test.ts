/**
 * A new state store never joins tables appvisor did not create (SPEC §8.6): in the main
 * database on MySQL/MariaDB and SQLite, in the schema `appvisor` on PostgreSQL. ADOPT_REFUSED
 * names one table and the way out, before anything is written; `mainDatabase.adopt` lets it in.
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqlClient, parseDatabaseUrl } from '../../src/dialects/registry.js';
import { AppvisorError } from '../../src/errors.js';
import { STORE_SCHEMA, TABLES } from '../../src/state/dialect.js';
import { foreignTables } from '../../src/state/foreign-tables.js';
import { mainDatabaseRefusals } from '../../src/state/main-check.js';
import { openStateStore } from '../../src/state/store.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';

const STORE_TABLES = Object.values(TABLES).sort();
const dialects = await dialectsUnderTest();
const pg = dialects.find((d) => d.dialect === 'postgres')!;

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`foreign tables in the main database on ${dialect}`, () => {
    let db: TestDatabase;
    /** Where a new store would go: the main database, or on PostgreSQL the schema appvisor. */
    let storePlace: (table: string) => string;

    beforeEach(async () => {
      db = await create();
      storePlace = db.store;
      if (dialect === 'postgres') await db.sql(`CREATE SCHEMA ${STORE_SCHEMA}`);
      // An empty file is an empty SQLite database.
      if (dialect === 'sqlite') fs.writeFileSync(db.url.slice('sqlite:'.length), '');
      await db.sql(`CREATE TABLE ${storePlace('users')} (id INTEGER PRIMARY KEY, username TEXT)`);
      await db.sql(`INSERT INTO ${storePlace('users')} (id, username) VALUES (1, 'theirs')`);
    });
    afterEach(() => db.drop());

    it('refuses to create the store beside a foreign table, naming it, and writes nothing', async () => {
      const err = await openStateStore(db.url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppvisorError);
      expect(err).toMatchObject({ code: 'ADOPT_REFUSED', retryable: false, params: { name: 'users' } });
      const message = (err as Error).message;
      expect(message).toContain('holds table users, which appvisor did not create');
      expect(message).toContain('mainDatabase.adopt: true in appvisor.yaml');
      expect(message).toContain('another database');
      if (dialect === 'postgres') expect(message).toContain(`(schema ${STORE_SCHEMA})`);
      expect(await db.tables()).toEqual(['users']);
    });

    it('plan sees the same refusals before anything is installed, read-only', async () => {
      const url = parseDatabaseUrl(db.url);
      const refusals = await mainDatabaseRefusals(url, { adopt: false });
      const what = refusals.map((e) => e.message.match(/^not installing (the \w+ \w+)/)?.[1]);
      // On PostgreSQL the foreign table is in the store's schema, the main app's public is empty.
      expect(what).toEqual(
        dialect === 'postgres' ? ['the state store'] : ['the state store', 'the main app'],
      );
      expect(refusals.every((e) => e.code === 'ADOPT_REFUSED' && e.message.includes('users'))).toBe(true);
      expect(await mainDatabaseRefusals(url, { adopt: true })).toEqual([]);
      expect(await db.tables()).toEqual(['users']);
      // Once the store exists (adopted), only what is still to install is refused.
      await (await openStateStore(db.url, { adopt: true })).close();
      const later = (await mainDatabaseRefusals(url, { adopt: false })).map((e) => e.message);
      expect(later.some((m) => m.startsWith('not installing the state store'))).toBe(false);
    });

    it('creates the store beside them with adopt, leaving them as they were', async () => {
      const store = await openStateStore(db.url, { adopt: true });
      await store.close();
      expect((await db.tables()).sort()).toEqual([...STORE_TABLES, 'users'].sort());
      expect(await db.sql(`SELECT id, username FROM ${storePlace('users')}`)).toEqual([
        { id: 1, username: 'theirs' },
      ]);
    });

    it('keeps opening a store it created, whatever was added beside it later', async () => {
      await db.sql(`DROP TABLE ${storePlace('users')}`);
      const first = await openStateStore(db.url);
      await first.close();
      await db.sql(`CREATE TABLE ${storePlace('added_later')} (id INTEGER)`);
      const again = await openStateStore(db.url);
      expect(again.storeId).toBe(first.storeId);
      await again.close();
    });

    it('lists tables and views appvisor did not create', async () => {
      await db.sql(`CREATE VIEW ${storePlace('user_names')} AS SELECT username FROM ${storePlace('users')}`);
      const store = await openStateStore(db.url, { adopt: true });
      await store.close();
      const client = openSqlClient(db.url, { schema: STORE_SCHEMA });
      try {
        const found = await foreignTables(client, STORE_TABLES);
        expect(found.tables).toEqual(['user_names', 'users']);
        expect(found.schema).toBe(dialect === 'postgres' ? STORE_SCHEMA : undefined);
      } finally {
        await client.close();
      }
    });
  });
}

describe.skipIf(!pg.available)('foreign tables in public on PostgreSQL', () => {
  it('do not keep the store out of its own schema', async () => {
    const db = await pg.create();
    try {
      await db.sql('CREATE TABLE public.users (id INTEGER PRIMARY KEY)');
      const store = await openStateStore(db.url);
      await store.close();
      expect((await db.tables()).sort()).toEqual([...STORE_TABLES, 'users'].sort());
    } finally {
      await db.drop();
    }
  });
});
