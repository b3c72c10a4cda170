/**
 * A fresh app database in each of the four modes an app can run on: a SQLite file, a PostgreSQL
 * database, a schema in a PostgreSQL database (search_path set to it) and a MySQL/MariaDB
 * database. Each is created under a unique name and dropped by `dispose()`.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openSqlClient } from '../../src/dialects/registry.js';
import type { AppDatabase, SqlClient } from '../../src/providers/provider.js';
import {
  MYSQL_URL,
  mysqlServer,
  PG_URL,
  postgres,
  uniqueName,
  withMysqlConnection,
  withPgClient,
} from './servers.js';

export const APP_DB_MODES = ['sqlite', 'postgres-database', 'postgres-schema', 'mysql'] as const;
export type AppDbMode = (typeof APP_DB_MODES)[number];

export interface AppDbFixture {
  readonly mode: AppDbMode;
  readonly database: AppDatabase;
  /** Opens another client on the same database (and schema): a restart of the app. */
  open(): SqlClient;
  /** Closes every client opened here and drops the database. */
  dispose(): Promise<void>;
}

/** Whether the server behind `mode` is reachable (SQLite always is). */
export async function modeAvailable(mode: AppDbMode): Promise<boolean> {
  if (mode === 'sqlite') return true;
  if (mode === 'mysql') return (await mysqlServer()).available;
  return (await postgres()).available;
}

export async function createAppDatabase(mode: AppDbMode): Promise<AppDbFixture> {
  switch (mode) {
    case 'sqlite':
      return sqliteFixture();
    case 'postgres-database':
      return postgresFixture(false);
    case 'postgres-schema':
      return postgresFixture(true);
    case 'mysql':
      return mysqlFixture();
  }
}

function fixture(
  mode: AppDbMode,
  connection: AppDatabase['connection'],
  openClient: () => SqlClient,
  drop: () => Promise<void>,
): AppDbFixture {
  const clients: SqlClient[] = [];
  const open = () => {
    const client = openClient();
    clients.push(client);
    return client;
  };
  const client = open();
  return {
    mode,
    database: { dialect: connection.dialect, client, connection },
    open,
    async dispose() {
      await Promise.all(clients.map((c) => c.close()));
      await drop();
    },
  };
}

async function sqliteFixture(): Promise<AppDbFixture> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-app-'));
  const filename = path.join(dir, 'app.sqlite');
  return fixture(
    'sqlite',
    { dialect: 'sqlite', filename, database: filename },
    () => openSqlClient(`sqlite:${filename}`),
    () => fs.rm(dir, { recursive: true, force: true }),
  );
}

async function postgresFixture(withSchema: boolean): Promise<AppDbFixture> {
  const name = uniqueName('avapp');
  const schema = withSchema ? uniqueName('avschema') : undefined;
  await withPgClient(PG_URL, (c) => c.query(`CREATE DATABASE "${name}"`));
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  if (schema) await withPgClient(url.href, (c) => c.query(`CREATE SCHEMA "${schema}"`));
  return fixture(
    withSchema ? 'postgres-schema' : 'postgres-database',
    { dialect: 'postgres', url: url.href, database: name, ...(schema ? { schema } : {}) },
    () => openSqlClient(url.href, schema ? { schema } : {}),
    async () => {
      await withPgClient(PG_URL, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  );
}

async function mysqlFixture(): Promise<AppDbFixture> {
  const name = uniqueName('avapp');
  await withMysqlConnection((c) => c.query(`CREATE DATABASE \`${name}\``));
  const url = new URL(MYSQL_URL);
  url.pathname = `/${name}`;
  return fixture(
    'mysql',
    { dialect: 'mysql', url: url.href, database: name },
    () => openSqlClient(url.href),
    async () => {
      await withMysqlConnection((c) => c.query(`DROP DATABASE IF EXISTS \`${name}\``));
    },
  );
}
