/**
 * One suite, run unchanged against SQLite, the real PostgreSQL and the real MariaDB: every
 * provider observes, creates, drops and opens databases with the same results.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { createProvider } from '../../src/providers/index.js';
import type { Provider, SqlClient } from '../../src/providers/provider.js';
import { uniqueName } from '../helpers/servers.js';
import { TARGETS } from './targets.js';

const HOSTILE_NAMES = [
  'x"; DROP DATABASE postgres; --',
  'a.b',
  '../etc',
  '',
  'x'.repeat(70),
  'a b',
  "a'b",
  'a\0b',
  'é',
];

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    if (err instanceof AppvisorError) return err.code;
    throw err;
  }
}

describe.each(TARGETS)('$dialect provider', (target) => {
  describe.skipIf(!target.available)('conformance', () => {
    let provider: Provider;
    const databases = new Set<string>();
    const schemas = new Set<string>();
    const owner = `appvisor:${uniqueName('store')}:crm`;

    /** A unique database name, dropped after the suite. */
    const dbName = (prefix = 'avt'): string => {
      const name = uniqueName(prefix);
      databases.add(name);
      return name;
    };

    beforeAll(() => {
      provider = target.make();
    });

    afterAll(async () => {
      for (const name of databases) await provider.dropDatabase(name).catch(() => undefined);
      for (const name of schemas) await provider.dropSchema(name).catch(() => undefined);
      await provider.close();
      await target.dispose();
    });

    it('reports its dialect and a server without a password', () => {
      expect(provider.dialect).toBe(target.dialect);
      expect(provider.server).not.toMatch(/:[^/@]*@/);
    });

    it('observes an absent database as absent', async () => {
      expect(await provider.observeDatabase(dbName())).toEqual({ exists: false });
    });

    it('creates a database with its owner marker, once', async () => {
      const name = dbName();
      expect(await provider.createDatabase(name, owner)).toBe('created');
      expect(await provider.observeDatabase(name)).toEqual({ exists: true, owner });
      expect(await provider.createDatabase(name, owner)).toBe('unchanged');
      expect(await provider.createDatabase(name, 'appvisor:someone-else:x')).toBe('unchanged');
      expect(await provider.observeDatabase(name)).toEqual({ exists: true, owner });
    });

    it('keeps an owner marker with quotes and backslashes intact', async () => {
      const name = dbName();
      const odd = `it's "mine" \\ ; -- ${owner}`;
      expect(await provider.createDatabase(name, odd)).toBe('created');
      expect(await provider.observeDatabase(name)).toEqual({ exists: true, owner: odd });
    });

    it('sees a database it did not create as existing without a marker', async () => {
      const name = dbName();
      await target.createForeign(name);
      expect(await provider.observeDatabase(name)).toEqual({ exists: true });
      expect(await provider.createDatabase(name, owner)).toBe('unchanged');
      expect(await provider.observeDatabase(name)).toEqual({ exists: true });
    });

    it('lists in its catalog what observeDatabase sees: its own with the marker, a foreign one without', async () => {
      const ours = dbName();
      const foreign = dbName();
      const absent = dbName();
      await provider.createDatabase(ours, owner);
      await target.createForeign(foreign);
      const { databases: listed } = await provider.catalog();
      expect(listed.find((d) => d.name === ours)).toEqual({ name: ours, owner });
      expect(listed.find((d) => d.name === foreign)).toEqual({ name: foreign });
      expect(listed.find((d) => d.name === absent)).toBeUndefined();
      // Every entry is what observing that name answers.
      for (const name of [ours, foreign]) {
        const { name: _name, ...seen } = listed.find((d) => d.name === name)!;
        expect(await provider.observeDatabase(name)).toEqual({ exists: true, ...seen });
      }
    });

    it('opens a created database and runs queries with ? parameters and transactions', async () => {
      const name = dbName();
      await provider.createDatabase(name, owner);
      const app = await provider.openDatabase(name, { maxConnections: 2 });
      try {
        expect(app.dialect).toBe(target.dialect);
        expect(app.connection.database).toBe(name);
        await app.client.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL)');
        await app.client.query('INSERT INTO items (id, label) VALUES (?, ?)', [1, "it's one"]);
        await app.client.transaction(async (tx) => {
          await tx.query('INSERT INTO items (id, label) VALUES (?, ?)', [2, 'two']);
        });
        await expect(
          app.client.transaction(async (tx) => {
            await tx.query('INSERT INTO items (id, label) VALUES (?, ?)', [3, 'three']);
            throw new Error('roll it back');
          }),
        ).rejects.toThrow('roll it back');
        const rows = await app.client.query<{ id: number; label: string }>(
          'SELECT id, label FROM items WHERE id > ? ORDER BY id',
          [0],
        );
        expect(rows.map((r) => [Number(r.id), r.label])).toEqual([
          [1, "it's one"],
          [2, 'two'],
        ]);
      } finally {
        await app.client.close();
      }
    });

    it('runs work on one connection to a database, with transactions', async () => {
      const name = dbName();
      await provider.createDatabase(name, owner);
      const ids = await provider.withConnection(name, {}, async (c) => {
        await c.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY)');
        await c.transaction((tx) => tx.query('INSERT INTO notes (id) VALUES (?)', [1]));
        return c.query<{ id: number }>('SELECT id FROM notes');
      });
      expect(ids.map((r) => Number(r.id))).toEqual([1]);
    });

    it('drops a database it created, then reports it absent and unchanged', async () => {
      const name = dbName();
      await provider.createDatabase(name, owner);
      expect(await provider.dropDatabase(name)).toBe('deleted');
      expect(await provider.observeDatabase(name)).toEqual({ exists: false });
      expect(await provider.dropDatabase(name)).toBe('unchanged');
      // A name dropped can be created again from scratch.
      expect(await provider.createDatabase(name, owner)).toBe('created');
      expect(await provider.observeDatabase(name)).toEqual({ exists: true, owner });
    });

    it('drops a database an app still has open', async () => {
      const name = dbName();
      await provider.createDatabase(name, owner);
      const app = await provider.openDatabase(name);
      try {
        await app.client.exec('CREATE TABLE t (x INTEGER)');
        await app.client.query('INSERT INTO t (x) VALUES (?)', [1]);
        expect(await provider.dropDatabase(name)).toBe('deleted');
        expect(await provider.observeDatabase(name)).toEqual({ exists: false });
      } finally {
        await app.client.close().catch(() => undefined);
      }
    });

    it('handles names with a hyphen end to end', async () => {
      const name = dbName('a-b');
      expect(name).toContain('-');
      expect(await provider.createDatabase(name, owner)).toBe('created');
      expect(await provider.observeDatabase(name)).toEqual({ exists: true, owner });
      const app = await provider.openDatabase(name);
      try {
        await app.client.exec('CREATE TABLE t (x INTEGER)');
        await app.client.query('INSERT INTO t (x) VALUES (?)', [42]);
        expect((await app.client.query<{ x: number }>('SELECT x FROM t')).map((r) => Number(r.x))).toEqual([
          42,
        ]);
      } finally {
        await app.client.close();
      }
      expect(await provider.dropDatabase(name)).toBe('deleted');
      expect(await provider.observeDatabase(name)).toEqual({ exists: false });
    });

    it.each(HOSTILE_NAMES)('rejects the name %j with INVALID_IDENTIFIER before any SQL', async (name) => {
      // On a server that does not answer, anything but validation would fail with DB_UNREACHABLE.
      const dead = createProvider(target.deadUrl, { dataDir: '/nonexistent/appvisor-never-created' });
      try {
        for (const p of [provider, dead]) {
          expect(await codeOf(p.observeDatabase(name))).toBe('INVALID_IDENTIFIER');
          expect(await codeOf(p.createDatabase(name, owner))).toBe('INVALID_IDENTIFIER');
          expect(await codeOf(p.dropDatabase(name))).toBe('INVALID_IDENTIFIER');
          expect(await codeOf(p.openDatabase(name))).toBe('INVALID_IDENTIFIER');
          if (target.schemas) {
            expect(await codeOf(p.observeSchema(name))).toBe('INVALID_IDENTIFIER');
            expect(await codeOf(p.createSchema(name, owner))).toBe('INVALID_IDENTIFIER');
            expect(await codeOf(p.dropSchema(name))).toBe('INVALID_IDENTIFIER');
          }
        }
      } finally {
        await dead.close();
      }
    });

    it('rejects an empty owner marker', async () => {
      expect(await codeOf(provider.createDatabase(dbName(), ''))).toBe('INVALID_IDENTIFIER');
    });

    it.skipIf(!target.reserved)('refuses to create or drop a database reserved by the server', async () => {
      expect(await codeOf(provider.dropDatabase(target.reserved!))).toBe('INVALID_IDENTIFIER');
      expect(await codeOf(provider.createDatabase(target.reserved!, owner))).toBe('INVALID_IDENTIFIER');
    });

    it('rejects at once with the reason of an aborted signal and creates nothing', async () => {
      const name = dbName();
      const reason = new AppvisorError('STEP_TIMEOUT', { step: 'create-database', app: 'crm', ms: 1 });
      const signal = AbortSignal.abort(reason);
      await expect(provider.createDatabase(name, owner, { signal })).rejects.toBe(reason);
      await expect(provider.observeDatabase(name, { signal })).rejects.toBe(reason);
      expect(await provider.observeDatabase(name)).toEqual({ exists: false });
    });

    describe.runIf(target.schemas)('schemas', () => {
      const schemaName = (prefix = 'avs'): string => {
        const name = uniqueName(prefix);
        schemas.add(name);
        return name;
      };

      it('creates, observes and drops a schema with its marker', async () => {
        const name = schemaName();
        expect(await provider.observeSchema(name)).toEqual({ exists: false });
        expect(await provider.createSchema(name, owner)).toBe('created');
        expect(await provider.observeSchema(name)).toEqual({ exists: true, owner });
        expect(await provider.createSchema(name, owner)).toBe('unchanged');
        expect(await provider.dropSchema(name)).toBe('deleted');
        expect(await provider.observeSchema(name)).toEqual({ exists: false });
        expect(await provider.dropSchema(name)).toBe('unchanged');
      });

      it('lists the schemas of its database in its catalog, with their markers', async () => {
        const name = schemaName();
        expect((await provider.catalog()).schemas?.find((e) => e.name === name)).toBeUndefined();
        await provider.createSchema(name, owner);
        const { schemas: listed } = await provider.catalog();
        expect(listed?.find((e) => e.name === name)).toEqual({ name, owner });
        expect(listed?.some((e) => e.name.startsWith('pg_') || e.name === 'information_schema')).toBe(false);
      });

      it('puts an app’s tables into its schema, hyphenated name included', async () => {
        const name = schemaName('s-x');
        expect(await provider.createSchema(name, owner)).toBe('created');
        const app = await provider.openDatabase(target.mainDatabase!, { schema: name });
        try {
          expect(app.connection.schema).toBe(name);
          await app.client.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
          await app.client.query('INSERT INTO notes (id, body) VALUES (?, ?)', [1, 'hello']);
          const where = await app.client.query<{ table_schema: string }>(
            'SELECT table_schema FROM information_schema.tables WHERE table_name = ?',
            ['notes'],
          );
          expect(where.map((r) => r.table_schema)).toEqual([name]);
          expect(await app.client.query('SELECT body FROM notes')).toEqual([{ body: 'hello' }]);
        } finally {
          await app.client.close();
        }
        expect(await provider.dropSchema(name)).toBe('deleted');
      });

      it('lends a connection for a schema’s work: its search_path, transactions, and nothing left behind', async () => {
        const [first, second] = [schemaName(), schemaName()];
        for (const name of [first, second]) expect(await provider.createSchema(name, owner)).toBe('created');
        const settings = (c: SqlClient) =>
          c.query<{ path: string; timeout: string }>(
            "SELECT current_setting('search_path') AS path, current_setting('statement_timeout') AS timeout",
          );
        await provider.withConnection(target.mainDatabase!, { schema: first }, async (c) => {
          expect(await settings(c)).toEqual([{ path: first, timeout: '0' }]);
          await c.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY)');
          await c.transaction((tx) => tx.query('INSERT INTO notes (id) VALUES (?)', [1]));
          await c
            .transaction(async (tx) => {
              await tx.query('INSERT INTO notes (id) VALUES (?)', [2]);
              throw new Error('roll back');
            })
            .catch(() => undefined);
          expect(await c.query('SELECT id FROM notes')).toEqual([{ id: 1 }]);
          // What the work sets for itself does not outlive it.
          await c.exec("SET statement_timeout = '5s'");
        });
        await expect(
          provider.withConnection(target.mainDatabase!, { schema: second }, async (c) => {
            await c.exec('SET search_path TO public');
            throw new Error('the work failed');
          }),
        ).rejects.toThrow('the work failed');
        for (let i = 0; i < 3; i++) {
          await provider.withConnection(target.mainDatabase!, { schema: second }, async (c) => {
            expect(await settings(c)).toEqual([{ path: second, timeout: '0' }]);
            expect(await c.query('SELECT to_regclass(?)::text AS t', ['notes'])).toEqual([{ t: null }]);
          });
        }
      });

      it('refuses reserved schemas', async () => {
        expect(await codeOf(provider.dropSchema('public'))).toBe('INVALID_IDENTIFIER');
        expect(await codeOf(provider.createSchema('pg_catalog', owner))).toBe('INVALID_IDENTIFIER');
      });
    });

    describe.runIf(!target.schemas)('schemas', () => {
      it('are not supported', async () => {
        const name = uniqueName('avs');
        expect(await codeOf(provider.observeSchema(name))).toBe('UNSUPPORTED_MODE');
        expect(await codeOf(provider.createSchema(name, owner))).toBe('UNSUPPORTED_MODE');
        expect(await codeOf(provider.dropSchema(name))).toBe('UNSUPPORTED_MODE');
        const db = dbName();
        await provider.createDatabase(db, owner);
        expect(await codeOf(provider.openDatabase(db, { schema: name }))).toBe('UNSUPPORTED_MODE');
      });
    });
  });
});
