/**
 * The three provider targets the conformance suite runs against, each with a way to make a
 * "foreign" database (one appvisor did not create) straight through the server.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { createProvider } from '../../src/providers/index.js';
import type { Dialect, Provider } from '../../src/providers/provider.js';
import { MYSQL_URL, mysqlServer, PG_URL, postgres } from '../helpers/servers.js';

export interface Target {
  readonly dialect: Dialect;
  readonly available: boolean;
  /** Whether the dialect has schemas (PostgreSQL only). */
  readonly schemas: boolean;
  /** The database of the server URL, which holds new-schema schemas. */
  readonly mainDatabase?: string;
  /** A URL on which nothing listens, to prove validation happens before any SQL. */
  readonly deadUrl: string;
  /** A database name the provider must refuse (reserved by the server), if the dialect has one. */
  readonly reserved?: string;
  make(): Provider;
  /** Creates a database named `name` directly, without any marker. */
  createForeign(name: string): Promise<void>;
  dispose(): Promise<void>;
}

const pgProbe = await postgres();
const mysqlProbe = await mysqlServer();

function sqliteTarget(): Target {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-providers-'));
  return {
    dialect: 'sqlite',
    available: true,
    schemas: false,
    deadUrl: 'sqlite:main.sqlite',
    make: () => createProvider('sqlite:data/main.sqlite', { dataDir }),
    async createForeign(name) {
      fs.mkdirSync(path.join(dataDir, 'apps'), { recursive: true });
      fs.writeFileSync(path.join(dataDir, 'apps', `${name}.sqlite`), 'not made by appvisor');
    },
    async dispose() {
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function postgresTarget(): Target {
  return {
    dialect: 'postgres',
    available: pgProbe.available,
    schemas: true,
    mainDatabase: parseDatabaseUrl(PG_URL).database ?? 'postgres',
    deadUrl: 'postgres://postgres@127.0.0.1:1/postgres',
    reserved: 'template1',
    make: () => createProvider(PG_URL, { dataDir: os.tmpdir() }),
    async createForeign(name) {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
    },
    async dispose() {},
  };
}

function mysqlTarget(): Target {
  return {
    dialect: 'mysql',
    available: mysqlProbe.available,
    schemas: false,
    deadUrl: 'mysql://root@127.0.0.1:1/',
    reserved: 'mysql',
    make: () => createProvider(MYSQL_URL, { dataDir: os.tmpdir() }),
    async createForeign(name) {
      const conn = await mysql.createConnection({ uri: MYSQL_URL });
      try {
        await conn.query(`CREATE DATABASE ${mysql.escapeId(name)}`);
      } finally {
        await conn.end();
      }
    },
    async dispose() {},
  };
}

export const TARGETS: readonly Target[] = [sqliteTarget(), postgresTarget(), mysqlTarget()];
