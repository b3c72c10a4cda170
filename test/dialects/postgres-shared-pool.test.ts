/**
 * The pool new-schema apps of one database share, on the real server: no app ever sees another
 * app's search_path (or its session), whatever went before on the connection it gets.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresProvider } from '../../src/dialects/postgres/provider.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { withDatabase } from '../../src/dialects/url.js';
import type { SqlClient } from '../../src/providers/provider.js';
import { ProviderSet } from '../../src/providers/set.js';
import { PG_URL, postgres, uniqueName } from '../helpers/servers.js';

const probe = await postgres();
const OWNER = 'appvisor:test:shared-pool';
const DATABASE = uniqueName('avshp');
const SCHEMAS = ['app_a', 'app_b', 'app_c'] as const;

let admin: pg.Client;
const providers: PostgresProvider[] = [];

/** A provider on the test database whose shared pool has `size` connections. */
function provider(size: number): PostgresProvider {
  const p = new PostgresProvider(parseDatabaseUrl(withDatabase(parseDatabaseUrl(PG_URL), DATABASE)), {
    schemaPoolSize: size,
  });
  providers.push(p);
  return p;
}

async function open(p: PostgresProvider, schema: string): Promise<SqlClient> {
  return (await p.openDatabase(DATABASE, { schema })).client;
}

/** The name in the `who` table the client's search_path finds first. */
async function who(client: SqlClient): Promise<string | undefined> {
  const rows = await client.query<{ name: string }>('SELECT name FROM who');
  return rows[0]?.name;
}

/** Both apps see their own table. */
async function expectOwn(a: SqlClient, b: SqlClient): Promise<void> {
  expect(await who(b)).toBe('app_b');
  expect(await who(a)).toBe('app_a');
  expect(await who(b)).toBe('app_b');
}

/** The shared pool's connections on the server (its application_name). */
async function poolBackends(): Promise<{ pid: number; state: string }[]> {
  const { rows } = await admin.query<{ pid: number; state: string }>(
    'SELECT pid, state FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
    [DATABASE, `appvisor:schemas:${DATABASE}`],
  );
  return rows;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What `promise` rejects with (undefined if it resolves), caught at once. */
function settled(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

/** Waits until a statement matching `pattern` runs on the pool, then applies `fn` to its backend. */
async function onRunning(pattern: string, fn: 'pg_cancel_backend' | 'pg_terminate_backend'): Promise<void> {
  await until(async () => {
    const { rowCount } = await admin.query(
      `SELECT ${fn}(pid) FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE $2`,
      [DATABASE, pattern],
    );
    return (rowCount ?? 0) > 0;
  }, `a statement like ${pattern} runs`);
}

describe.skipIf(!probe.available)('the shared pool of new-schema apps', () => {
  let a: SqlClient;
  let b: SqlClient;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${DATABASE}"`);
    const setup = provider(1);
    for (const schema of SCHEMAS) {
      await setup.createSchema(schema, OWNER);
      const client = await open(setup, schema);
      await client.exec(`CREATE TABLE who (name text); INSERT INTO who VALUES ('${schema}')`);
      await client.close();
    }
    // One connection: every statement of one app runs on the connection the other used last.
    const one = provider(1);
    a = await open(one, 'app_a');
    b = await open(one, 'app_b');
  });

  afterAll(async () => {
    await Promise.allSettled(providers.map((p) => p.close()));
    await admin.query(`DROP DATABASE IF EXISTS "${DATABASE}" WITH (FORCE)`);
    await admin.end();
  });

  it('gives each app its own search_path on one connection', async () => {
    await expectOwn(a, b);
    expect((await poolBackends()).length).toBe(1);
  });

  it('after a failed statement', async () => {
    await expect(a.query('SELECT * FROM missing_table')).rejects.toMatchObject({ code: '42P01' });
    await expectOwn(a, b);
  });

  it('after an error inside a transaction that had changed the search_path', async () => {
    await expect(
      a.transaction(async (tx) => {
        await tx.exec('SET search_path TO app_b');
        expect(await who(tx)).toBe('app_b');
        await tx.query('SELECT 1/0');
      }),
    ).rejects.toMatchObject({ code: '22012' });
    await expectOwn(a, b);
  });

  it('after a statement cancelled by statement_timeout', async () => {
    await expect(
      a.transaction(async (tx) => {
        await tx.exec('SET LOCAL statement_timeout = 50');
        await tx.query('SELECT pg_sleep(5)');
      }),
    ).rejects.toMatchObject({ code: '57014' });
    await expectOwn(a, b);
  });

  it('after a statement cancelled by pg_cancel_backend', async () => {
    const sleeping = settled(a.query('SELECT pg_sleep(5) AS cancel_me'));
    await onRunning('%cancel_me%', 'pg_cancel_backend');
    expect(await sleeping).toMatchObject({ code: '57014' });
    await expectOwn(a, b);
  });

  it.each([
    ['SET search_path', 'SET search_path TO app_b'],
    ['set_config', "SELECT set_config('search_path', 'app_b', false)"],
    ['RESET search_path', 'RESET search_path'],
    ['a DO block', "DO $$ BEGIN PERFORM set_config('search_path', 'app_b', false); END $$"],
  ])('after the app itself changes its search_path (%s)', async (_title, sql) => {
    await a.exec(sql);
    // The same connection, back to the same app: it starts from its own schema again.
    expect(await who(a)).toBe('app_a');
    await a.exec(sql);
    await expectOwn(a, b);
  });

  it('after the app SETs something else (statement_timeout), which does not outlive its statement', async () => {
    await a.exec('SET statement_timeout = 20');
    await expect(b.query('SELECT pg_sleep(0.1)')).resolves.toHaveLength(1);
    await expect(a.query('SELECT pg_sleep(0.1)')).resolves.toHaveLength(1);
    await expectOwn(a, b);
  });

  it('after SET LOCAL and SET inside committed transactions', async () => {
    await a.transaction(async (tx) => {
      await tx.exec('SET LOCAL search_path TO app_b');
      expect(await who(tx)).toBe('app_b');
    });
    await expectOwn(a, b);
    await a.transaction(async (tx) => {
      await tx.exec('SET search_path TO app_b');
    });
    expect(await who(a)).toBe('app_a');
    await expectOwn(a, b);
  });

  it("after the app creates a temporary table (found before any schema) of another app's name", async () => {
    await a.exec("CREATE TEMP TABLE who AS SELECT 'temp of a' AS name");
    await expectOwn(a, b);
  });

  it('after the app leaves a transaction open: the next app is not inside it', async () => {
    await a.exec('BEGIN');
    await expectOwn(a, b);
    expect((await poolBackends()).filter((r) => r.state.startsWith('idle in transaction'))).toEqual([]);
  });

  it('after the pooled connection is terminated while idle (the pool reconnects)', async () => {
    await expectOwn(a, b);
    const [backend] = await poolBackends();
    await admin.query('SELECT pg_terminate_backend($1)', [backend!.pid]);
    await until(
      async () => !(await poolBackends()).some((r) => r.pid === backend!.pid),
      'the backend is gone',
    );
    // pg-pool may hand out the dead connection once before its 'error' reaches it.
    await a.query('SELECT 1').catch(() => undefined);
    await expectOwn(a, b);
    expect((await poolBackends()).map((r) => r.pid)).not.toContain(backend!.pid);
  });

  it('after the connection is terminated in the middle of a statement', async () => {
    const sleeping = settled(a.query('SELECT pg_sleep(5) AS terminate_me'));
    await onRunning('%terminate_me%', 'pg_terminate_backend');
    expect(await sleeping).toMatchObject({ code: '57P01' });
    await expectOwn(a, b);
  });

  it('under concurrency: two apps interleaving queries and transactions on 1 and 2 connections', async () => {
    for (const size of [1, 2]) {
      const p = provider(size);
      const [x, y] = [await open(p, 'app_a'), await open(p, 'app_b')];
      const seen = await Promise.all(
        Array.from({ length: 200 }, (_, i) => {
          const [client, own] = i % 2 === 0 ? [x, 'app_a'] : [y, 'app_b'];
          const read =
            i % 7 === 0
              ? client.transaction(async (tx) => [await who(tx), await who(tx)])
              : who(client).then((name) => [name]);
          return read.then((names) => names.every((name) => name === own));
        }),
      );
      expect(seen.every(Boolean)).toBe(true);
      expect((await poolBackends()).length).toBeLessThanOrEqual(1 + size);
      await Promise.all([x.close(), y.close()]);
    }
  });

  it('leaks no connection: after every path above the pool holds at most its size', async () => {
    // The server forgets a closed pool's backends a moment after they said goodbye.
    await until(async () => (await poolBackends()).length === 1, 'only the pool of a and b is left');
    const p = provider(2);
    const c = await open(p, 'app_c');
    await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        i % 3 === 0 ? c.query('SELECT * FROM missing_table') : c.exec('SET work_mem = 1024'),
      ),
    );
    expect(await who(c)).toBe('app_c');
    await c.close();
    await until(async () => (await poolBackends()).length === 1, 'the closed pool has no connections');
  });

  it("one app's close leaves the others working; the last close closes the pool", async () => {
    const p = provider(2);
    const [x, y, z] = [await open(p, 'app_a'), await open(p, 'app_b'), await open(p, 'app_c')];
    await Promise.all([who(x), who(y), who(z)]);
    await x.close();
    await x.close();
    await expect(who(x)).rejects.toThrow(/closed/);
    expect(await who(y)).toBe('app_b');
    expect(await who(z)).toBe('app_c');
    await y.close();
    expect(await who(z)).toBe('app_c');
    const before = (await poolBackends()).length;
    await z.close();
    await until(async () => (await poolBackends()).length < before, 'the last close ends the pool');
    // A new app after that gets a new pool.
    const again = await open(p, 'app_a');
    expect(await who(again)).toBe('app_a');
    await again.close();
  });

  it('holds at most maxConnections of the pool per app, leaving the rest to the others', async () => {
    const p = provider(4);
    const busy = (await p.openDatabase(DATABASE, { schema: 'app_a', maxConnections: 2 })).client;
    const other = await open(p, 'app_b');
    const pids = new Set<number>();
    let busyDone = false;
    const sleeping = Promise.all(
      Array.from({ length: 12 }, async () => {
        const [row] = await busy.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.05)');
        pids.add(row!.pid);
        return who(busy);
      }),
    ).finally(() => {
      busyDone = true;
    });
    // While app_a's twelve statements queue behind its two connections, app_b gets one of the others.
    await until(async () => (await poolBackends()).some((r) => r.state === 'active'), 'app_a runs');
    expect(await who(other)).toBe('app_b');
    expect(busyDone).toBe(false);
    expect((await sleeping).every((name) => name === 'app_a')).toBe(true);
    expect(pids.size).toBeLessThanOrEqual(2);
    await Promise.all([busy.close(), other.close()]);
  });

  it('schemaPoolSize 0: each app gets its own pool instead, set to its schema', async () => {
    const p = provider(0);
    const x = (await p.openDatabase(DATABASE, { schema: 'app_a', label: 'appvisor:own-a' })).client;
    const y = (await p.openDatabase(DATABASE, { schema: 'app_b', label: 'appvisor:own-b' })).client;
    await expectOwn(x, y);
    const { rows } = await admin.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'appvisor:own-%'`,
      [DATABASE],
    );
    expect(Number(rows[0]?.n)).toBe(2);
    await Promise.all([x.close(), y.close()]);
  });
});

describe.skipIf(!probe.available)('the shared pool and the connection budget', () => {
  const database = uniqueName('avshb');

  afterAll(async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await client.end();
  });

  it('counts its connections, and a burst of many apps reuses them without closing any', async () => {
    const setup = new pg.Client({ connectionString: PG_URL });
    await setup.connect();
    await setup.query(`CREATE DATABASE "${database}"`);
    await setup.end();
    const url = withDatabase(parseDatabaseUrl(PG_URL), database);
    const set = new ProviderSet(url, { dataDir: '/nonexistent', connectionBudget: 4, schemaPoolSize: 3 });
    try {
      const schemas = Array.from({ length: 20 }, (_, i) => `s${i}`);
      for (const s of schemas) await set.main.createSchema(s, OWNER);
      const apps = await Promise.all(
        schemas.map(async (s) => (await set.main.openDatabase(database, { schema: s })).client),
      );
      const pids = await Promise.all(
        apps.flatMap((app, i) =>
          Array.from({ length: 10 }, async () => {
            const [row] = await app.query<{ pid: number; schema: string }>(
              'SELECT pg_backend_pid() AS pid, current_schema() AS schema',
            );
            expect(row?.schema).toBe(schemas[i]);
            return row!.pid;
          }),
        ),
      );
      expect(new Set(pids).size).toBeLessThanOrEqual(3);
      const budget = [...set.budgets().values()][0]!;
      expect(budget.peak).toBeLessThanOrEqual(3);
      expect(budget.open).toBeGreaterThan(0);
      await Promise.all(apps.map((app) => app.close()));
      expect(budget.open).toBe(0);
    } finally {
      await set.close();
    }
  });
});
