/**
 * MariaDB's data transfer on the real server: a dump taken while 20 writers insert is one point
 * in time; load + swap (one RENAME TABLE) replaces the data and leaves the marker; a corrupted
 * dump changes nothing and leaves no temporary behind; a load killed with SIGKILL leaves a marked
 * temporary that is listed and swept; a clone creates its database; views and triggers are
 * refused before anything changes; TOOL_MISSING without the tools on PATH.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlTransfer } from '../../src/dialects/mysql/transfer.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { withDatabase } from '../../src/dialects/url.js';
import { AppvisorError } from '../../src/errors.js';
import type { DataPlace } from '../../src/ops/transfer.js';
import { createProvider } from '../../src/providers/index.js';
import type { Provider } from '../../src/providers/provider.js';
import { MYSQL_URL, mysqlServer, uniqueName, withMysqlConnection } from '../helpers/servers.js';
import {
  dumpToFile,
  killLoadMidway,
  startWriters,
  type WriterConnection,
  type WriterRow,
  writerPrefixes,
} from './transfer-helpers.js';

const probe = await mysqlServer();
const run = uniqueName('avx');
const owner = `appvisor:${run}:app`;
const parsed = parseDatabaseUrl(MYSQL_URL);

let dir: string;
let provider: Provider;
const created: string[] = [];

const q = (name: string): string => mysql.escapeId(name);

async function exec(sql: string, params: unknown[] = []): Promise<mysql.RowDataPacket[]> {
  return withMysqlConnection(async (c) => (await c.query<mysql.RowDataPacket[]>(sql, params))[0]);
}

async function rowsOf(db: string): Promise<WriterRow[]> {
  const rows = await exec(`SELECT writer, seq FROM ${q(db)}.items ORDER BY writer, seq`);
  return rows.map((r) => ({ writer: Number(r.writer), seq: Number(r.seq) }));
}

async function newAppDatabase(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  created.push(name);
  await provider.createDatabase(name, owner);
  await exec(
    `CREATE TABLE ${q(name)}.items (id bigint AUTO_INCREMENT PRIMARY KEY, writer int NOT NULL, seq int NOT NULL, UNIQUE (writer, seq)) ENGINE=InnoDB`,
  );
  return name;
}

async function mysqlWriter(db: string): Promise<WriterConnection> {
  const conn = await mysql.createConnection({ uri: withDatabase(parsed, db) });
  return {
    insert: async (writer, seq) => {
      await conn.query('INSERT INTO items (writer, seq) VALUES (?, ?)', [writer, seq]);
    },
    close: () => conn.end(),
  };
}

async function failure(promise: Promise<unknown>): Promise<AppvisorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AppvisorError)) throw new Error(`expected an AppvisorError, got ${String(err)}`);
  return err;
}

async function ownLeftovers(): Promise<string[]> {
  return (await provider.listLeftovers()).filter((l) => l.owner === owner).map((l) => l.name);
}

describe.skipIf(!probe.available)('MariaDB data transfer', () => {
  const transfer = createMysqlTransfer({ url: MYSQL_URL, dataDir: os.tmpdir() });

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'avx-my-'));
    provider = createProvider(parsed, { dataDir: dir });
  });

  afterAll(async () => {
    for (const name of await ownLeftovers()) await provider.sweepLeftover(name, owner);
    for (const name of created) await provider.dropDatabase(name).catch(() => undefined);
    await provider.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('checks its tools', async () => {
    await transfer.checkTools();
    expect(transfer.member).toBe('data.sql');
  });

  it('dumps one point in time while 20 writers insert, and load + swap puts exactly it in place', async () => {
    const app = await newAppDatabase('avx_db');
    const place: DataPlace = { kind: 'database', database: app };
    const writers = startWriters(20, () => mysqlWriter(app));
    try {
      await writers.until(200);
      const before = (await rowsOf(app)).length;
      const file = path.join(dir, 'db.sql');
      await dumpToFile(transfer, place, file);
      const after = (await rowsOf(app)).length;
      await writers.stop();

      const dump = await fs.readFile(file, 'utf8');
      expect(dump).not.toMatch(/CREATE DATABASE|^USE /m);

      const loaded = await transfer.load(place, file, owner);
      expect(await ownLeftovers()).toEqual([loaded.database]);
      const got = await rowsOf(loaded.database);
      expect(after).toBeGreaterThan(before);
      expect(got.length).toBeGreaterThanOrEqual(before);
      expect(got.length).toBeLessThanOrEqual(after);
      writerPrefixes(got);

      expect((await rowsOf(app)).length).toBe(writers.written());
      await transfer.swap(place, loaded, owner);
      expect(await rowsOf(app)).toEqual(got);
      expect(await provider.observeDatabase(app)).toEqual({ exists: true, owner });
      expect(await provider.observeDatabase(loaded.database)).toEqual({ exists: false });
      expect(await ownLeftovers()).toEqual([]);
      // AUTO_INCREMENT came along with the table: the app inserts on.
      await exec(`INSERT INTO ${q(app)}.items (writer, seq) VALUES (99, 1)`);
    } finally {
      await writers.stop();
    }
  });

  it('refuses a corrupted dump: the app database is untouched and no temporary is left', async () => {
    const app = await newAppDatabase('avx_bad');
    const place: DataPlace = { kind: 'database', database: app };
    await exec(`INSERT INTO ${q(app)}.items (writer, seq) SELECT 1, seq FROM ${q(app)}.seq_1_to_500`);
    const file = path.join(dir, 'bad.sql');
    await dumpToFile(transfer, place, file);
    const text = await fs.readFile(file, 'utf8');
    await fs.writeFile(file, text.replace('INSERT INTO `items` VALUES', 'INSERT INTO `items` VALUE (('));
    const err = await failure(transfer.load(place, file, owner));
    expect(err.code).toBe('DB_OPERATION_FAILED');
    expect(err.message).toMatch(/syntax/i);
    expect((await rowsOf(app)).length).toBe(500);
    expect(await ownLeftovers()).toEqual([]);
    const temps = await exec(
      `SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_avtmp\\_%' AND SCHEMA_COMMENT = ?`,
      [owner],
    );
    expect(Number(temps[0]!.n)).toBe(0);
  });

  it('lists the temporary database of a load killed with SIGKILL mid-way, and sweeps it', async () => {
    const app = await newAppDatabase('avx_kill');
    const place: DataPlace = { kind: 'database', database: app };
    await exec(
      `INSERT INTO ${q(app)}.items (writer, seq) SELECT seq % 10, seq FROM ${q(app)}.seq_1_to_300000`,
    );
    const file = path.join(dir, 'kill.sql');
    await dumpToFile(transfer, place, file);
    await killLoadMidway({ dialect: 'mysql', url: MYSQL_URL, place, file, owner }, async () => {
      return (await ownLeftovers()).length > 0;
    });
    const left = await ownLeftovers();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^_avtmp_[0-9a-f]{16}$/);
    expect(await provider.sweepLeftover(left[0]!, owner)).toBe('deleted');
    expect(await ownLeftovers()).toEqual([]);
    expect((await rowsOf(app)).length).toBe(300000);
  });

  it('clones into a database that does not exist yet', async () => {
    const app = await newAppDatabase('avx_src');
    await exec(`INSERT INTO ${q(app)}.items (writer, seq) SELECT 7, seq FROM ${q(app)}.seq_1_to_100`);
    const file = path.join(dir, 'clone.sql');
    await dumpToFile(transfer, { kind: 'database', database: app }, file);
    const dest = uniqueName('avx_dest');
    created.push(dest);
    const destOwner = `appvisor:${run}:clone`;
    const destPlace: DataPlace = { kind: 'database', database: dest };
    const loaded = await transfer.load(destPlace, file, destOwner);
    await transfer.swap(destPlace, loaded, destOwner);
    expect(await provider.observeDatabase(dest)).toEqual({ exists: true, owner: destOwner });
    expect(await rowsOf(dest)).toEqual(await rowsOf(app));
    expect(await provider.observeDatabase(loaded.database)).toEqual({ exists: false });
  });

  it('refuses a database with a trigger or a view before changing anything', async () => {
    const app = await newAppDatabase('avx_trg');
    const place: DataPlace = { kind: 'database', database: app };
    await exec(`INSERT INTO ${q(app)}.items (writer, seq) VALUES (1, 1)`);
    await exec(`CREATE VIEW ${q(app)}.v AS SELECT writer FROM ${q(app)}.items`);
    const file = path.join(dir, 'view.sql');
    await dumpToFile(transfer, place, file);
    const err = await failure(transfer.load(place, file, owner));
    expect(err.code).toBe('UNSUPPORTED_MODE');
    expect(err.message).toMatch(/1 views/);
    expect(await ownLeftovers()).toEqual([]);
    expect((await rowsOf(app)).length).toBe(1);
  });

  it('answers TOOL_MISSING naming mariadb-client when the tools are not on PATH', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'avx-nopath-'));
    const saved = process.env.PATH;
    const bare = createMysqlTransfer({ url: MYSQL_URL, dataDir: os.tmpdir() });
    process.env.PATH = empty;
    try {
      const err = await failure(bare.checkTools());
      expect(err.code).toBe('TOOL_MISSING');
      expect(err.message).toMatch(/mariadb-dump \(or mysqldump\).*mariadb-client/);
      const dumped = await failure(
        dumpToFile(bare, { kind: 'database', database: 'mysql' }, path.join(dir, 'none')),
      );
      expect(dumped.code).toBe('TOOL_MISSING');
    } finally {
      process.env.PATH = saved;
      await fs.rm(empty, { recursive: true, force: true });
    }
  });
});
