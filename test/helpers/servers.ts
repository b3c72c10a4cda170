/**
 * Real database servers for integration tests. SPEC §2: PostgreSQL at APPVISOR_TEST_PG_URL and
 * MySQL/MariaDB at APPVISOR_TEST_MYSQL_URL; when one is unreachable its tests are skipped with one
 * loud line, unless CI=true, where an unreachable server fails the run.
 */
import crypto from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';

export const PG_URL = process.env.APPVISOR_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const MYSQL_URL = process.env.APPVISOR_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';

export interface ServerProbe {
  readonly available: boolean;
  readonly url: string;
}

const probes = new Map<string, Promise<ServerProbe>>();

async function probe(name: string, url: string, check: () => Promise<void>): Promise<ServerProbe> {
  try {
    await check();
    return { available: true, url };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (process.env.CI === 'true') {
      throw new Error(`CI=true and ${name} is unreachable at ${redact(url)}: ${reason}`);
    }
    console.warn(`\n!!! SKIPPING ${name} tests: ${name} unreachable at ${redact(url)} (${reason})\n`);
    return { available: false, url };
  }
}

/** Probes PostgreSQL once per test process. */
export function postgres(): Promise<ServerProbe> {
  let p = probes.get('pg');
  if (!p) {
    p = probe('PostgreSQL', PG_URL, async () => {
      const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
      await client.connect();
      try {
        await client.query('select 1');
      } finally {
        await client.end();
      }
    });
    probes.set('pg', p);
  }
  return p;
}

/** Probes MySQL/MariaDB once per test process. */
export function mysqlServer(): Promise<ServerProbe> {
  let p = probes.get('mysql');
  if (!p) {
    p = probe('MySQL/MariaDB', MYSQL_URL, async () => {
      const conn = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
      try {
        await conn.query('select 1');
      } finally {
        await conn.end();
      }
    });
    probes.set('mysql', p);
  }
  return p;
}

/** A name unique to this run, safe as an identifier on every dialect: `prefix_<pid>_<random>`. */
export function uniqueName(prefix = 'avt'): string {
  return `${prefix}_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Drops a PostgreSQL role a test created (roles are server-wide; drop what it owned first). */
export async function dropPgRole(role: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP ROLE IF EXISTS "${role.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}

/**
 * Drops every PostgreSQL database a test's run named `<prefix>…`, and the temporary ones
 * appvisor left for them (`_avtmp_…`, whose comment names the app's database).
 */
export async function dropPgDatabasesOf(prefix: string): Promise<void> {
  await withPgClient(PG_URL, async (c) => {
    const { rows } = await c.query<{ name: string }>(
      `SELECT datname AS name FROM pg_database
        WHERE starts_with(datname, $1)
           OR (starts_with(datname, '_avtmp_') AND shobj_description(oid, 'pg_database') LIKE $2)`,
      [prefix, `appvisor:%:${prefix}%`],
    );
    for (const { name } of rows)
      await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  });
}

/** Runs `fn` on a PostgreSQL connection of its own to `url` (an admin's: create, drop, inspect), then closes it. */
export async function withPgClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Runs `fn` on a MySQL/MariaDB connection of its own to the test server, then closes it. */
export async function withMysqlConnection<T>(fn: (conn: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection({ uri: MYSQL_URL });
  try {
    return await fn(conn);
  } finally {
    await conn.end();
  }
}

/** `url` with its database (path) set to `database`. */
export function urlWithDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.href;
}
