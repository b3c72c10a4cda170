/**
 * The three main-database dialects for end-to-end plan/apply tests: a fresh main database per
 * test, and what the tests ask of each server (does a database exist, make a foreign one).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { mysqlServer, postgres, uniqueName } from '../helpers/servers.js';

export const PG = await postgres();
export const MY = await mysqlServer();
export const log = pino({ level: 'silent' });

export interface Dialect {
  readonly name: 'sqlite' | 'postgres' | 'mysql';
  readonly available: boolean;
  /** Creates a fresh main database; returns its URL. */
  mainUrl(dir: string): Promise<string>;
  /** Drops every database created by this run with the given prefix. */
  cleanup(prefix: string, mainUrl: string): Promise<void>;
  /** Whether a database exists on the server. */
  exists(name: string, mainUrl: string): Promise<boolean>;
  /** Creates a database outside appvisor. */
  createForeign(name: string, mainUrl: string): Promise<void>;
}

export function pgAdmin(): pg.Client {
  return new pg.Client({ connectionString: PG.url });
}

export const DIALECTS: Dialect[] = [
  {
    name: 'sqlite',
    available: true,
    mainUrl: async (dir) => `sqlite:${path.join(dir, 'data', 'main.sqlite')}`,
    cleanup: async () => undefined,
    exists: async (name, mainUrl) =>
      fs
        .access(path.join(path.dirname(mainUrl.slice('sqlite:'.length)), 'apps', `${name}.sqlite`))
        .then(() => true)
        .catch(() => false),
    createForeign: async (name, mainUrl) => {
      const dir = path.join(path.dirname(mainUrl.slice('sqlite:'.length)), 'apps');
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, `${name}.sqlite`), '');
    },
  },
  {
    name: 'postgres',
    available: PG.available,
    mainUrl: async () => {
      const db = uniqueName('avmain');
      const c = pgAdmin();
      await c.connect();
      await c.query(`CREATE DATABASE ${db}`);
      await c.end();
      const u = new URL(PG.url);
      u.pathname = `/${db}`;
      return u.toString();
    },
    cleanup: async (prefix, mainUrl) => {
      const c = pgAdmin();
      await c.connect();
      const main = new URL(mainUrl).pathname.slice(1);
      const { rows } = await c.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname = $2`,
        [`${prefix}%`, main],
      );
      for (const r of rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
      await c.end();
    },
    exists: async (name) => {
      const c = pgAdmin();
      await c.connect();
      const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      await c.end();
      return rowCount === 1;
    },
    createForeign: async (name) => {
      const c = pgAdmin();
      await c.connect();
      await c.query(`CREATE DATABASE "${name}"`);
      await c.end();
    },
  },
  {
    name: 'mysql',
    available: MY.available,
    mainUrl: async () => {
      const db = uniqueName('avmain');
      const c = await mysql.createConnection({ uri: MY.url });
      await c.query(`CREATE DATABASE \`${db}\``);
      await c.end();
      const u = new URL(MY.url);
      u.pathname = `/${db}`;
      return u.toString();
    },
    cleanup: async (prefix, mainUrl) => {
      const c = await mysql.createConnection({ uri: MY.url });
      const main = new URL(mainUrl).pathname.slice(1);
      const [rows] = await c.query<mysql.RowDataPacket[]>(
        'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ? OR SCHEMA_NAME = ?',
        [`${prefix}%`, main],
      );
      for (const r of rows) await c.query(`DROP DATABASE IF EXISTS \`${r.n}\``);
      await c.end();
    },
    exists: async (name) => {
      const c = await mysql.createConnection({ uri: MY.url });
      const [rows] = await c.query<mysql.RowDataPacket[]>(
        'SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [name],
      );
      await c.end();
      return rows.length === 1;
    },
    createForeign: async (name) => {
      const c = await mysql.createConnection({ uri: MY.url });
      await c.query(`CREATE DATABASE \`${name}\``);
      await c.end();
    },
  },
];

export function manifest(name: string, extra = ''): string {
  return `apiVersion: appvisor/v1\nkind: App\nname: ${name}\n${extra}`;
}

/** Settings for a plan/apply test in `dir` (apps in `dir/apps.d`, data in `dir/data`) on `mainUrl`. */
export function testSettings(dir: string, mainUrl: string): Settings {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    appsDir: path.join(dir, 'apps.d'),
    dataDir: path.join(dir, 'data'),
    database: { url: mainUrl },
    app: undefined,
    discoveryAdapter: 'local',
    processAdapter: 'local',
    deletionGraceMs: 86_400_000,
    configFile: undefined,
  };
}
