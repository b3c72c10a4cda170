/**
 * One fresh, empty main database per test on each dialect: a temp SQLite file, or a database
 * with a unique name on the test PostgreSQL / MariaDB server, dropped afterwards.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import type pg from 'pg';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { withDatabase } from '../../src/dialects/url.js';
import type { Dialect } from '../../src/providers/provider.js';
import { STORE_SCHEMA } from '../../src/state/dialect.js';
import { MYSQL_URL, mysqlServer, PG_URL, postgres, uniqueName, withPgClient } from '../helpers/servers.js';

export interface TestDatabase {
  readonly dialect: Dialect;
  /** The main database URL. */
  readonly url: string;
  /** SQLite: the temp folder holding the file. */
  readonly dir?: string;
  /** Names of the tables in the database (SQLite: none when the file does not exist; PostgreSQL: in any schema). */
  tables(): Promise<string[]>;
  /** A state store table as `sql` must name it: in the schema `appvisor` on PostgreSQL. */
  store(table: string): string;
  /** Runs SQL with `?` placeholders directly on the database, bypassing appvisor. */
  sql(statement: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  drop(): Promise<void>;
}

export interface DialectUnderTest {
  readonly dialect: Dialect;
  readonly available: boolean;
  create(): Promise<TestDatabase>;
}

async function sqliteDatabase(): Promise<TestDatabase> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-state-'));
  const file = path.join(dir, 'main.sqlite');
  const withDb = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(file, { fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    dialect: 'sqlite',
    url: `sqlite:${file}`,
    dir,
    store: (table) => table,
    async tables() {
      if (!fs.existsSync(file)) return [];
      return withDb((db) =>
        (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[])
          .map((r) => r.name)
          .filter((n) => !n.startsWith('sqlite_')),
      );
    },
    async sql(statement, params = []) {
      return withDb((db) => {
        const stmt = db.prepare(statement);
        if (stmt.reader) return stmt.all(...params) as Record<string, unknown>[];
        stmt.run(...params);
        return [];
      });
    },
    async drop() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresDatabase(): Promise<TestDatabase> {
  const name = uniqueName('avt_state');
  const admin = <T>(fn: (c: pg.Client) => Promise<T>, url = PG_URL): Promise<T> => withPgClient(url, fn);
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = withDatabase(parseDatabaseUrl(PG_URL), name);
  return {
    dialect: 'postgres',
    url,
    store: (table) => `${STORE_SCHEMA}.${table}`,
    async tables() {
      return admin(async (c) => {
        const { rows } = await c.query<{ t: string }>(
          "SELECT table_name AS t FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
        );
        return rows.map((r) => r.t);
      }, url);
    },
    async sql(statement, params = []) {
      let n = 0;
      const result = await admin(
        (c) =>
          c.query(
            statement.replace(/\?/g, () => `$${++n}`),
            params,
          ),
        url,
      );
      return result.rows;
    },
    async drop() {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function mysqlDatabase(): Promise<TestDatabase> {
  const name = uniqueName('avt_state');
  const admin = async <T>(fn: (c: mysql.Connection) => Promise<T>, uri = MYSQL_URL): Promise<T> => {
    const conn = await mysql.createConnection({ uri });
    try {
      return await fn(conn);
    } finally {
      await conn.end();
    }
  };
  await admin((c) => c.query(`CREATE DATABASE \`${name}\``));
  const url = withDatabase(parseDatabaseUrl(MYSQL_URL), name);
  return {
    dialect: 'mysql',
    url,
    store: (table) => table,
    async tables() {
      return admin(async (c) => {
        const [rows] = await c.query<mysql.RowDataPacket[]>(
          'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ?',
          [name],
        );
        return rows.map((r) => String(r.t));
      });
    },
    async sql(statement, params = []) {
      const [rows] = await admin((c) => c.query(statement, params), url);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    async drop() {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS \`${name}\``));
    },
  };
}

/** The three dialects, with whether their server is reachable (SQLite always is). */
export async function dialectsUnderTest(): Promise<DialectUnderTest[]> {
  const [pgProbe, myProbe] = await Promise.all([postgres(), mysqlServer()]);
  return [
    { dialect: 'sqlite', available: true, create: sqliteDatabase },
    { dialect: 'postgres', available: pgProbe.available, create: postgresDatabase },
    { dialect: 'mysql', available: myProbe.available, create: mysqlDatabase },
  ];
}
