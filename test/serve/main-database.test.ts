/**
 * The main app never installs its tables beside tables appvisor did not create in the main
 * database (SPEC §8.6; PostgreSQL: its `public` schema). `serve` keeps serving and the main app
 * answers 503 ADOPT_REFUSED naming the table, until `mainDatabase.adopt: true`. On MariaDB and
 * SQLite the state store shares that database, so a fresh one with foreign tables is refused
 * before anything starts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STORE_SCHEMA, TABLES } from '../../src/state/dialect.js';
import { openStateStore } from '../../src/state/store.js';
import { dropPgRole, uniqueName } from '../helpers/servers.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';
import { manifest, type Serve, startServe } from './harness.js';

const SIDE: Partial<Record<TestDatabase['dialect'], string>> = {
  sqlite: '',
  postgres: 'database: {mode: new-schema}\n',
};

/** Foreign, but shaped so the sample app's own migrations could run beside (and on) it. */
const USERS = 'CREATE TABLE users (id BIGINT NOT NULL PRIMARY KEY, username VARCHAR(64))';

for (const { dialect, available, create } of await dialectsUnderTest()) {
  describe.skipIf(!available)(`the main app on a ${dialect} main database`, () => {
    let db: TestDatabase;
    const serves: Serve[] = [];
    const dirs: string[] = [];

    const roles: string[] = [];
    const serveOn = async (opts: { adopt?: boolean; dir?: string; url?: string } = {}): Promise<Serve> => {
      const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-main-db-'));
      dirs.push(dir);
      const serve = await startServe({
        dir,
        databaseUrl: opts.url ?? db.url,
        ...(opts.adopt ? { settings: { mainDatabase: { adopt: true } } } : {}),
        // Shows that the rest keeps serving: a sub-app in a file of its own (SQLite) or a schema
        // of its own (PostgreSQL), gone with the main database. (MariaDB: it would need a
        // database of its own on the server.)
        manifests: SIDE[dialect] === undefined ? {} : { 'side.yaml': manifest('side', SIDE[dialect]) },
      });
      serves.push(serve);
      return serve;
    };
    /** The main app's tables: PostgreSQL: in public; elsewhere beside the store's. */
    const mainTables = async (): Promise<string[]> => {
      if (dialect === 'postgres') {
        const rows = await db.sql(
          "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        );
        return rows.map((r) => String(r.t));
      }
      const store = new Set<string>(Object.values(TABLES));
      return (await db.tables()).filter((t) => !store.has(t)).sort();
    };
    /** The main database holding a foreign `users` table (and, off PostgreSQL, an empty store). */
    const withForeignUsers = async (): Promise<void> => {
      // Off PostgreSQL the store shares the main database and would refuse it first: create the
      // store while the database is empty, as an `apply` before the first `serve` leaves it.
      if (dialect !== 'postgres') await (await openStateStore(db.url)).close();
      await db.sql(USERS);
      await db.sql("INSERT INTO users (id, username) VALUES (1, 'theirs')");
    };

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      for (const serve of serves.splice(0)) await serve.close();
      for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
      await db.drop();
      for (const role of roles.splice(0)) await dropPgRole(role);
    });

    it('refuses to install beside a foreign table: 503 ADOPT_REFUSED naming it, the rest serves', async () => {
      await withForeignUsers();
      const serve = await serveOn();

      const answer = await serve.request('/api/info');
      expect(answer.status).toBe(503);
      expect(answer.body.error).toMatchObject({ code: 'ADOPT_REFUSED', app: 'main' });
      expect(answer.body.error.message).toContain('not installing the main app');
      expect(answer.body.error.message).toContain('holds table users, which appvisor did not create');
      expect(answer.body.error.message).toContain('mainDatabase.adopt: true');
      if (dialect === 'postgres') expect(answer.body.error.message).toContain('(schema public)');

      expect((await serve.request('/_supervisor/readyz')).status).toBe(200);
      if (SIDE[dialect] !== undefined) {
        expect((await serve.request('/apps/side/api/info')).body).toMatchObject({ name: 'side' });
      }
      // Nothing of the main app was written; the foreign table is as it was.
      expect(await mainTables()).toEqual(['users']);
      expect(await db.sql('SELECT username FROM users')).toEqual([{ username: 'theirs' }]);
    });

    it('installs beside it with mainDatabase.adopt: true', async () => {
      await withForeignUsers();
      const serve = await serveOn({ adopt: true });
      const answer = await serve.request('/api/info');
      expect(answer.status).toBe(200);
      expect(answer.body.name).toBe('main');
      expect(await mainTables()).toEqual(['appvisor_application', 'appvisor_data_version', 'notes', 'users']);
    });

    it('keeps running a main app that installed itself, whatever was added beside it later', async () => {
      const first = await serveOn();
      expect((await first.request('/api/info')).status).toBe(200);
      await first.close();
      await db.sql('CREATE TABLE added_later (id INTEGER)');
      const again = await serveOn({ dir: first.dir });
      expect((await again.request('/api/info')).status).toBe(200);
    });

    it.runIf(dialect !== 'postgres')(
      'refuses a fresh main database with foreign tables before starting anything (the state store)',
      async () => {
        // An empty file is an empty SQLite database.
        if (dialect === 'sqlite') fs.writeFileSync(db.url.slice('sqlite:'.length), '');
        await db.sql(USERS);
        const err = await serveOn().catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'ADOPT_REFUSED', params: { name: 'users' } });
        expect((err as Error).message).toContain('not installing the state store');
        expect(await db.tables()).toEqual(['users']);

        const serve = await serveOn({ adopt: true });
        expect((await serve.request('/api/info')).status).toBe(200);
      },
    );

    it.runIf(dialect === 'postgres')(
      'keeps the main app in public when its user has a schema of its own',
      async () => {
        // The default search_path ("$user", public) would find that schema first; a user called
        // appvisor would find the state store's.
        const role = uniqueName('avt_role');
        roles.push(role);
        const url = new URL(db.url);
        await db.sql(`CREATE ROLE ${role} LOGIN`);
        await db.sql(`ALTER DATABASE ${url.pathname.slice(1)} OWNER TO ${role}`);
        await db.sql(`ALTER SCHEMA public OWNER TO ${role}`);
        await db.sql(`CREATE SCHEMA ${role} AUTHORIZATION ${role}`);
        url.username = role;
        const serve = await serveOn({ url: url.href });
        expect((await serve.request('/api/info')).status).toBe(200);
        expect(await mainTables()).toEqual([
          'appvisor_application',
          'appvisor_data_version',
          'notes',
          'users',
        ]);
        expect(
          await db.sql('SELECT table_name FROM information_schema.tables WHERE table_schema = ?', [role]),
        ).toEqual([]);
      },
    );

    it.runIf(dialect === 'postgres')('keeps the state store out of public', async () => {
      await withForeignUsers();
      await serveOn();
      const names = Object.values(TABLES);
      const rows = await db.sql(
        `SELECT table_schema || '.' || table_name AS r FROM information_schema.tables
          WHERE table_name IN (${names.map(() => '?').join(', ')}) ORDER BY 1`,
        names,
      );
      expect(rows.map((r) => r.r)).toEqual(names.map((t) => `${STORE_SCHEMA}.${t}`).sort());
    });
  });
}
