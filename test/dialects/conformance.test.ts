/**
 * Every registered dialect module, checked for the whole DialectModule interface against its real
 * server (SQLite in a temp folder, PostgreSQL and MariaDB in databases unique to this run, dropped
 * afterwards). A new dialect is registered in src/dialects/registry.ts and given a test database
 * in test/state/dialects.ts; this suite then runs against it unchanged.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dialectFor,
  dialectForScheme,
  dialects,
  parseDatabaseUrl,
  SUPPORTED_SCHEMES,
} from '../../src/dialects/registry.js';
import type { DialectModule } from '../../src/dialects/types.js';
import { AppvisorError } from '../../src/errors.js';
import { validateIdentifier } from '../../src/providers/identifiers.js';
import type { SqlClient } from '../../src/providers/provider.js';
import { STORE_SCHEMA, TABLES } from '../../src/state/dialect.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore } from '../../src/state/store.js';
import { uniqueName } from '../helpers/servers.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';

const environments = await dialectsUnderTest();

/** A URL with nothing listening behind it, on a server dialect. */
function deadUrl(url: string): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = '9';
  return u.toString();
}

/** `url` with another scheme of the same dialect, a password and another database. */
function equivalents(module: DialectModule, url: string): string[] {
  const u = new URL(url);
  return module.schemes.flatMap((scheme) => {
    const withPassword = new URL(u);
    withPassword.password = 'hunter2';
    const otherDb = new URL(u);
    otherDb.pathname = '/some_other_database';
    return [u, withPassword, otherDb].map((v) => `${scheme}${v.toString().slice(v.protocol.length)}`);
  });
}

describe('the dialect registry', () => {
  it('has a test database for every registered dialect', () => {
    expect(dialects.map((d) => d.name).sort()).toEqual(environments.map((e) => e.dialect).sort());
  });

  it('lists every scheme once, each selecting its own dialect', () => {
    const schemes = dialects.flatMap((d) => d.schemes);
    expect(new Set(schemes).size).toBe(schemes.length);
    expect(SUPPORTED_SCHEMES).toEqual(schemes.map((s) => `${s}//`));
  });

  it('refuses an unknown scheme, naming the accepted ones and not the password', () => {
    let error: unknown;
    try {
      dialectFor('oracle://scott:tiger@db/x');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AppvisorError);
    expect((error as AppvisorError).code).toBe('CONFIG_INVALID');
    const message = (error as AppvisorError).message;
    for (const d of dialects) expect(message).toContain(d.urlForm);
    expect(message).not.toContain('tiger');
    expect(() => parseDatabaseUrl('oracle://x')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(dialectForScheme('oracle:')).toBeUndefined();
  });
});

describe.each(dialects)('the $name dialect module', (module) => {
  const env = environments.find((e) => e.dialect === module.name);
  describe.skipIf(!env?.available)('against its real server', () => {
    let db: TestDatabase;
    let dataDir: string;
    const clients: SqlClient[] = [];
    const open = (client: SqlClient): SqlClient => {
      clients.push(client);
      return client;
    };

    beforeAll(async () => {
      db = await env!.create();
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-dialects-'));
    });

    afterAll(async () => {
      await Promise.allSettled(clients.map((c) => c.close()));
      await db?.drop();
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    });

    it('parses a URL of each of its schemes as its own', () => {
      for (const scheme of module.schemes) {
        const url = module.remote ? `${scheme}//u:pw@db.example:1234/main` : `${scheme}data/main.sqlite`;
        const parsed = parseDatabaseUrl(url, dataDir);
        expect(parsed.dialect).toBe(module.name);
        expect(parsed.redacted).not.toContain('pw');
        expect(dialectFor(url)).toBe(module);
        expect(dialectFor(scheme)).toBe(module);
        expect(dialectFor(parsed)).toBe(module);
        expect(module.resolveUrl(module.resolveUrl(url, dataDir), '/elsewhere')).toBe(
          module.resolveUrl(url, dataDir),
        );
      }
    });

    it('accepts names up to its limit, and quotes them so that the server takes them', async () => {
      const { rules, quoteIdentifier } = module.identifiers;
      const longest = 'x'.repeat(rules.maxLength);
      expect(validateIdentifier(module.name, 'database', longest)).toBe(longest);
      expect(() => validateIdentifier(module.name, 'database', `${longest}x`)).toThrow(
        expect.objectContaining({ code: 'INVALID_IDENTIFIER' }),
      );
      if (quoteIdentifier) {
        const client = open(module.openClient(parseDatabaseUrl(db.url)));
        const table = `${uniqueName('q')}-dash`;
        await client.exec(`CREATE TABLE ${quoteIdentifier('database', table)} (k INTEGER)`);
        expect(
          await module.store.tableExists(
            client,
            module.schemas ? `public.${quoteIdentifier('database', table)}` : table,
          ),
        ).toBe(true);
      }
    });

    it('names its server by one stable identity, equal for equivalent URLs, without a password', async () => {
      const url = parseDatabaseUrl(db.url);
      const identity = module.serverIdentity(url, dataDir);
      expect(module.serverIdentity(parseDatabaseUrl(db.url), dataDir)).toBe(identity);
      expect(identity).not.toMatch(/:[^/@]*@/);
      const same = module.remote
        ? equivalents(module, db.url)
        : [
            db.url,
            `sqlite://${url.filename}`,
            `sqlite:${path.join(path.dirname(url.filename!), 'other.sqlite')}`,
          ];
      for (const other of same)
        expect(module.serverIdentity(parseDatabaseUrl(other), dataDir)).toBe(identity);
      // The provider names its server the same way: inventory records match either.
      const provider = module.createProvider(url, { dataDir });
      try {
        expect(provider.dialect).toBe(module.name);
        expect(provider.server).toBe(identity);
      } finally {
        await provider.close();
      }
      if (module.remote) {
        const elsewhere = new URL(db.url);
        elsewhere.port = '1';
        expect(module.serverIdentity(parseDatabaseUrl(elsewhere.toString()), dataDir)).not.toBe(identity);
      } else {
        expect(module.serverIdentity(url, path.join(dataDir, 'other'))).not.toBe(identity);
        expect(module.serverIdentity(url, path.relative(process.cwd(), dataDir))).toBe(identity);
      }
    });

    it('opens a client that runs queries, writes and transactions', async () => {
      const client = open(module.openClient(parseDatabaseUrl(db.url), { max: 2 }));
      expect(client.dialect).toBe(module.name);
      const [row] = await client.query<{ x: unknown }>('SELECT ? AS x', [41]);
      expect(Number(row?.x)).toBe(41);
      const table = uniqueName('conf');
      await client.exec(`CREATE TABLE ${table} (k ${module.store.types.key} NOT NULL PRIMARY KEY)`);
      await client.transaction(async (tx) => {
        await tx.query(`INSERT INTO ${table} (k) VALUES (?)`, ['a']);
      });
      expect(await client.execute(`DELETE FROM ${table} WHERE k = ?`, ['a'])).toBe(1);
      expect(await client.execute(`DELETE FROM ${table} WHERE k = ?`, ['a'])).toBe(0);
    });

    it('opens a read-only client that reads but refuses to write', async () => {
      const url = parseDatabaseUrl(db.url);
      const table = uniqueName('ro');
      await open(module.openClient(url)).exec(`CREATE TABLE ${table} (k INTEGER)`);
      const client = module.openReadOnlyClient(url);
      expect(client).toBeDefined();
      open(client!);
      const [row] = await client!.query<{ x: unknown }>('SELECT 1 AS x');
      expect(Number(row?.x)).toBe(1);
      await expect(client!.query(`INSERT INTO ${table} (k) VALUES (1)`)).rejects.toThrow();
      expect(await client!.query(`SELECT k FROM ${table}`)).toEqual([]);
    });

    it('translates a failed statement, and a server it cannot reach, into appvisor errors', async () => {
      const url = parseDatabaseUrl(db.url);
      const client = open(module.openClient(url));
      const failure = await client.query('SELECT * FROM no_such_table_here').catch((err: unknown) => err);
      expect(module.classifyError(failure)).toBe('failed');
      const failed = module.translateError(failure, { server: url.redacted, operation: 'read' });
      expect(failed.code).toBe('DB_OPERATION_FAILED');
      expect(failed.params).toMatchObject({ dialect: module.name, server: url.redacted, operation: 'read' });
      expect(module.translateError(failed, { server: 'x', operation: 'y' })).toBe(failed);
      if (module.remote) {
        const dead = parseDatabaseUrl(deadUrl(db.url));
        const unreachable = await open(module.openClient(dead))
          .query('SELECT 1')
          .catch((err: unknown) => err);
        expect(module.classifyError(unreachable)).toBe('unreachable');
        expect(module.translateError(unreachable, { server: dead.redacted, operation: 'open' }).code).toBe(
          'DB_UNREACHABLE',
        );
      } else {
        // A handle the database keeps from writing: the driver's permission error.
        const refused = await open(module.openReadOnlyClient(url)!)
          .exec(`CREATE TABLE ${uniqueName('ro')} (k INTEGER)`)
          .catch((err: unknown) => err);
        expect(module.translateError(refused, { server: url.redacted, operation: 'write' }).code).toBe(
          'DB_PERMISSION_DENIED',
        );
      }
    });

    // Server dialects have none: their replicas coordinate through the leader lease in the store.
    it.skipIf(!module.lockSession)(
      'holds a lock that another session cannot take until it is released',
      async () => {
        const url = parseDatabaseUrl(db.url);
        const namespace = `appvisor:conformance:${uniqueName()}`;
        const mine = await module.lockSession!(url, namespace);
        const theirs = await module.lockSession!(url, namespace);
        try {
          expect(await mine.tryLock()).toBe(true);
          expect(await theirs.tryLock()).toBe(false);
          await mine.check();
          await mine.release();
          expect(await theirs.tryLock()).toBe(true);
          await theirs.check();
        } finally {
          await theirs.release().catch(() => theirs.destroy());
          mine.destroy();
        }
      },
    );

    it("creates the state store's layout in an empty database, which the read-only reader then finds", async () => {
      // A database of its own: the store refuses to move in beside the other tests' tables.
      const empty = await env!.create();
      try {
        await checkStoreLayout(empty.url);
      } finally {
        await empty.drop();
      }
    });

    async function checkStoreLayout(url: string): Promise<void> {
      const store = await openStateStore(url, { cwd: dataDir });
      const storeId = store.storeId;
      await store.close();
      const client = module.openClient(parseDatabaseUrl(url), { schema: STORE_SCHEMA });
      try {
        await checkTables(client);
      } finally {
        await client.close();
      }
      const reader = await openStateReader(url, { cwd: dataDir });
      try {
        expect(reader.storeId).toBe(storeId);
      } finally {
        await reader.close();
      }
    }

    async function checkTables(client: SqlClient): Promise<void> {
      for (const table of Object.values(TABLES))
        expect(await module.store.tableExists(client, table)).toBe(true);
      expect(await module.store.tableExists(client, uniqueName('absent'))).toBe(false);
      const listed = (await module.store.listTables(client, module.schemas ? STORE_SCHEMA : undefined)).map(
        (r) => r.t,
      );
      expect(listed).toEqual(expect.arrayContaining(Object.values(TABLES)));
      expect(await module.store.schemaExists(client, STORE_SCHEMA)).toBe(module.schemas);
    }

    it("writes the store's SQL fragments so that they run: types, upserts, columns, an index, the migration lock", async () => {
      const client = open(module.openClient(parseDatabaseUrl(db.url), { max: 2 }));
      const { types } = module.store;
      const table = uniqueName('frag');
      const index = module.store.index(table, `${table}_v`, ['v']);
      await client.exec(
        `CREATE TABLE ${table} (id ${types.serialPk}, k ${types.key} NOT NULL UNIQUE, v ${types.key}, doc ${types.json}, flag ${types.bool}, n ${types.int}${index.inline ? `, ${index.inline}` : ''})${types.tableOptions}`,
      );
      if (index.statement) await client.exec(index.statement);
      const insert = `INSERT INTO ${table} (k, v) VALUES (?, ?)`;
      await client.query(`${insert}${module.store.upsertClause('k', ['v'])}`, ['a', 'first']);
      await client.query(`${insert}${module.store.upsertClause('k', ['v'])}`, ['a', 'second']);
      await client.query(`${insert}${module.store.ignoreDuplicateClause('k')}`, ['a', 'third']);
      expect(await client.query(`SELECT k, v FROM ${table}`)).toEqual([{ k: 'a', v: 'second' }]);
      for (const step of module.store.addColumns(table, [`extra ${types.text}`, `more ${types.int}`])) {
        await client.exec(step);
      }
      await client.query(`UPDATE ${table} SET extra = ?, more = ? WHERE k = ?`, ['x', 7, 'a']);
      const [row] = await client.query<{ extra: string; more: unknown }>(`SELECT extra, more FROM ${table}`);
      expect([row?.extra, Number(row?.more)]).toEqual(['x', 7]);
      await client.transaction(async (tx) => {
        const unlock = await module.store.lockForMigration(tx, `appvisor:conformance:${table}`, db.url);
        await unlock();
      });
    });
  });
});
