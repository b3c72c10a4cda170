/**
 * PostgreSQL's data transfer on the real server: a dump taken while 20 writers insert is one point
 * in time; load + swap replaces the data and leaves the marker; a corrupted dump changes nothing
 * and leaves no temporary behind; leftovers of a killed restore are listed and swept; a clone
 * takes a new name; schema mode; TOOL_MISSING without the tools on PATH.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresTransfer } from '../../src/dialects/postgres/transfer.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { withDatabase } from '../../src/dialects/url.js';
import { AppvisorError } from '../../src/errors.js';
import type { DataPlace } from '../../src/ops/transfer.js';
import { createProvider } from '../../src/providers/index.js';
import type { Provider } from '../../src/providers/provider.js';
import { applyPlan } from '../../src/reconcile/commands.js';
import { PG_URL, postgres, uniqueName, withPgClient } from '../helpers/servers.js';
import { log, manifest, testSettings } from '../reconcile/dialects.js';
import {
  dumpToFile,
  killLoadMidway,
  startWriters,
  type WriterConnection,
  type WriterRow,
  writerPrefixes,
} from './transfer-helpers.js';

const probe = await postgres();
const run = uniqueName('avx');
const owner = `appvisor:${run}:app`;
const parsed = parseDatabaseUrl(PG_URL);

let dir: string;
let provider: Provider;
const created: string[] = [];

function urlOf(database: string): string {
  return withDatabase(parsed, database);
}

async function query<T extends pg.QueryResultRow>(
  database: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  return withPgClient(urlOf(database), async (c) => (await c.query<T>(sql, params)).rows);
}

async function rowsOf(database: string, schema?: string): Promise<WriterRow[]> {
  const table = schema ? `${pg.escapeIdentifier(schema)}.items` : 'items';
  return query<WriterRow>(database, `SELECT writer, seq FROM ${table} ORDER BY writer, seq`);
}

async function newAppDatabase(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  created.push(name);
  await provider.createDatabase(name, owner);
  await query(
    name,
    'CREATE TABLE items (id bigserial PRIMARY KEY, writer int NOT NULL, seq int NOT NULL, UNIQUE (writer, seq))',
  );
  return name;
}

async function pgWriter(database: string, table: string): Promise<WriterConnection> {
  const client = new pg.Client({ connectionString: urlOf(database) });
  await client.connect();
  return {
    insert: async (writer, seq) => {
      await client.query(`INSERT INTO ${table} (writer, seq) VALUES ($1, $2)`, [writer, seq]);
    },
    close: () => client.end(),
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

async function ownLeftovers(p: Provider = provider): Promise<string[]> {
  return (await p.listLeftovers()).filter((l) => l.owner === owner).map((l) => l.name);
}

describe.skipIf(!probe.available)('PostgreSQL data transfer', () => {
  const transfer = createPostgresTransfer({ url: PG_URL, dataDir: os.tmpdir() });

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'avx-pg-'));
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
    expect(transfer.member).toBe('data.pgdump');
  });

  it('dumps one point in time while 20 writers insert, and load + swap puts exactly it in place', async () => {
    const app = await newAppDatabase('avx_db');
    const place: DataPlace = { kind: 'database', database: app };
    const writers = startWriters(20, () => pgWriter(app, 'items'));
    try {
      await writers.until(200);
      const before = (await rowsOf(app)).length;
      const file = path.join(dir, 'db.pgdump');
      await dumpToFile(transfer, place, file);
      const after = (await rowsOf(app)).length;
      await writers.stop();

      const loaded = await transfer.load(place, file, owner);
      expect(loaded.kind).toBe('database');
      expect(await ownLeftovers()).toContain(loaded.database);
      const got = await rowsOf(loaded.database);
      expect(got.length).toBeGreaterThanOrEqual(before);
      expect(got.length).toBeLessThanOrEqual(after);
      expect(after).toBeGreaterThan(before);
      // Each writer inserts its seq 1, 2, 3… one after the other: a snapshot holds a prefix of each.
      writerPrefixes(got);

      // The app went on writing after the dump; the swap replaces all of it with the dump's data.
      expect((await rowsOf(app)).length).toBe(writers.written());
      await transfer.swap(place, loaded, owner);
      expect(await rowsOf(app)).toEqual(got);
      expect(await provider.observeDatabase(app)).toEqual({ exists: true, owner });
      expect(await provider.observeDatabase(loaded.database)).toEqual({ exists: false });
      expect(await ownLeftovers()).toEqual([]);
    } finally {
      await writers.stop();
    }
  });

  it('refuses a corrupted dump: the app database is untouched and no temporary is left', async () => {
    const app = await newAppDatabase('avx_bad');
    const place: DataPlace = { kind: 'database', database: app };
    await query(app, 'INSERT INTO items (writer, seq) SELECT 1, g FROM generate_series(1, 500) g');
    const file = path.join(dir, 'bad.pgdump');
    await dumpToFile(transfer, place, file);
    const bytes = await fs.readFile(file);
    // Cut it in the middle of its data: pg_restore fails part-way.
    await fs.writeFile(file, bytes.subarray(0, Math.floor(bytes.length * 0.8)));
    const err = await failure(transfer.load(place, file, owner));
    expect(err.code).toBe('DB_OPERATION_FAILED');
    expect(err.message).toMatch(/pg_restore/);
    expect((await rowsOf(app)).length).toBe(500);
    expect(await ownLeftovers()).toEqual([]);
    const temps = await query<{ n: string }>(
      'postgres',
      `SELECT count(*) AS n FROM pg_database WHERE starts_with(datname, '_avtmp_') AND shobj_description(oid, 'pg_database') = $1`,
      [owner],
    );
    expect(Number(temps[0]!.n)).toBe(0);
  });

  it('lists the temporary database of a load killed with SIGKILL mid-way, and sweeps it', async () => {
    const app = await newAppDatabase('avx_kill');
    const place: DataPlace = { kind: 'database', database: app };
    await query(app, 'INSERT INTO items (writer, seq) SELECT 1, g FROM generate_series(1, 300000) g');
    const file = path.join(dir, 'kill.pgdump');
    await dumpToFile(transfer, place, file);
    await killLoadMidway({ dialect: 'postgres', url: PG_URL, place, file, owner }, async () => {
      return (await ownLeftovers()).length > 0;
    });
    const left = await ownLeftovers();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^_avtmp_[0-9a-f]{16}$/);
    expect(await provider.sweepLeftover(left[0]!, owner)).toBe('deleted');
    expect(await ownLeftovers()).toEqual([]);
    expect((await rowsOf(app)).length).toBe(300000);
  });

  it("an aborted load rejects with the signal's reason and removes its temporary database", async () => {
    const app = await newAppDatabase('avx_abort');
    const place: DataPlace = { kind: 'database', database: app };
    await query(app, 'INSERT INTO items (writer, seq) SELECT 1, g FROM generate_series(1, 300000) g');
    const file = path.join(dir, 'abort.pgdump');
    await dumpToFile(transfer, place, file);
    const controller = new AbortController();
    const reason = new Error('stop now');
    const loading = transfer.load(place, file, owner, { signal: controller.signal });
    while ((await ownLeftovers()).length === 0) await new Promise((r) => setTimeout(r, 10));
    controller.abort(reason);
    await expect(loading).rejects.toBe(reason);
    expect(await ownLeftovers()).toEqual([]);
    expect((await rowsOf(app)).length).toBe(300000);
  });

  it('clones into a database that does not exist yet', async () => {
    const app = await newAppDatabase('avx_src');
    await query(app, 'INSERT INTO items (writer, seq) SELECT 7, g FROM generate_series(1, 100) g');
    const file = path.join(dir, 'clone.pgdump');
    await dumpToFile(transfer, { kind: 'database', database: app }, file);
    const dest = uniqueName('avx_dest');
    created.push(dest);
    const destOwner = `appvisor:${run}:clone`;
    const destPlace: DataPlace = { kind: 'database', database: dest };
    const loaded = await transfer.load(destPlace, file, destOwner);
    await transfer.swap(destPlace, loaded, destOwner);
    expect(await provider.observeDatabase(dest)).toEqual({ exists: true, owner: destOwner });
    expect(await rowsOf(dest)).toEqual(await rowsOf(app));
  });

  describe('schema mode', () => {
    let main: string;
    let schemaProvider: Provider;

    beforeAll(async () => {
      main = uniqueName('avx_main');
      created.push(main);
      await provider.createDatabase(main, owner);
      schemaProvider = createProvider(parseDatabaseUrl(urlOf(main)), { dataDir: dir });
    });

    afterAll(async () => {
      for (const name of await ownLeftovers(schemaProvider)) await schemaProvider.sweepLeftover(name, owner);
      await schemaProvider.close();
    });

    async function newSchema(prefix: string): Promise<string> {
      const schema = uniqueName(prefix);
      await schemaProvider.createSchema(schema, owner);
      await query(
        main,
        `CREATE TABLE ${pg.escapeIdentifier(schema)}.items (id bigserial PRIMARY KEY, writer int NOT NULL, seq int NOT NULL, UNIQUE (writer, seq))`,
      );
      return schema;
    }

    it('dumps a schema while 20 writers insert; load + swap renames it in, with its marker', async () => {
      const schema = await newSchema('avx_s');
      const place: DataPlace = { kind: 'schema', database: main, schema };
      const table = `${pg.escapeIdentifier(schema)}.items`;
      const writers = startWriters(20, () => pgWriter(main, table));
      try {
        await writers.until(200);
        const before = (await rowsOf(main, schema)).length;
        const file = path.join(dir, 'schema.pgdump');
        await dumpToFile(transfer, place, file);
        const after = (await rowsOf(main, schema)).length;
        await writers.stop();

        const loaded = await transfer.load(place, file, owner);
        if (loaded.kind !== 'schema') throw new Error('expected a schema');
        expect(loaded.database).toBe(main);
        expect(await ownLeftovers(schemaProvider)).toEqual([loaded.schema]);
        const got = await rowsOf(main, loaded.schema);
        expect(got.length).toBeGreaterThanOrEqual(before);
        expect(got.length).toBeLessThanOrEqual(after);
        writerPrefixes(got);

        await transfer.swap(place, loaded, owner);
        expect(await rowsOf(main, schema)).toEqual(got);
        expect(await schemaProvider.observeSchema(schema)).toEqual({ exists: true, owner });
        expect(await schemaProvider.observeSchema(loaded.schema)).toEqual({ exists: false });
        expect(await ownLeftovers(schemaProvider)).toEqual([]);
        // The sequence came along, renamed with its schema: the app inserts on.
        await query(main, `INSERT INTO ${table} (writer, seq) VALUES (99, 1)`);
      } finally {
        await writers.stop();
      }
    });

    it('refuses a corrupted schema dump: the schema is untouched, no staging database or temporary schema left', async () => {
      const schema = await newSchema('avx_sbad');
      const table = `${pg.escapeIdentifier(schema)}.items`;
      await query(main, `INSERT INTO ${table} (writer, seq) SELECT 2, g FROM generate_series(1, 500) g`);
      const file = path.join(dir, 'schema-bad.pgdump');
      await dumpToFile(transfer, { kind: 'schema', database: main, schema }, file);
      const bytes = await fs.readFile(file);
      await fs.writeFile(file, bytes.subarray(0, Math.floor(bytes.length * 0.8)));
      const err = await failure(transfer.load({ kind: 'schema', database: main, schema }, file, owner));
      expect(err.code).toBe('DB_OPERATION_FAILED');
      expect((await rowsOf(main, schema)).length).toBe(500);
      expect(await ownLeftovers(schemaProvider)).toEqual([]);
      expect(await ownLeftovers()).toEqual([]);
    });

    it('clones a schema into a new one beside it, and sweeps a schema a killed restore left', async () => {
      const schema = await newSchema('avx_s2');
      await query(
        main,
        `INSERT INTO ${pg.escapeIdentifier(schema)}.items (writer, seq) SELECT 3, g FROM generate_series(1, 50) g`,
      );
      const file = path.join(dir, 'schema2.pgdump');
      await dumpToFile(transfer, { kind: 'schema', database: main, schema }, file);

      const dest = uniqueName('avx_s3');
      const destOwner = `appvisor:${run}:clone-schema`;
      const destPlace: DataPlace = { kind: 'schema', database: main, schema: dest };
      const loaded = await transfer.load(destPlace, file, destOwner);
      await transfer.swap(destPlace, loaded, destOwner);
      expect(await rowsOf(main, dest)).toEqual(await rowsOf(main, schema));
      expect(await schemaProvider.observeSchema(dest)).toEqual({ exists: true, owner: destOwner });
      await schemaProvider.dropSchema(dest);

      const left = await transfer.load({ kind: 'schema', database: main, schema }, file, owner);
      if (left.kind !== 'schema') throw new Error('expected a schema');
      expect(await ownLeftovers(schemaProvider)).toEqual([left.schema]);
      expect(await schemaProvider.sweepLeftover(left.schema, owner)).toBe('deleted');
      expect(await ownLeftovers(schemaProvider)).toEqual([]);
    });
  });

  it("apply sweeps what a new-schema app's killed restores left: the staging database and a temporary schema", async () => {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'avx-apply-'));
    await fs.mkdir(path.join(work, 'apps.d'));
    const mainDb = uniqueName('avx_amain');
    created.push(mainDb);
    await query('postgres', `CREATE DATABASE ${pg.escapeIdentifier(mainDb)}`);
    const settings = testSettings(work, urlOf(mainDb));
    const app = uniqueName('avxapp').replaceAll('_', '-');
    const schema = uniqueName('avx_as');
    await fs.writeFile(
      path.join(work, 'apps.d', 'app.yaml'),
      manifest(app, `database:\n  mode: new-schema\n  schema: ${schema}\n`),
    );
    const mainProvider = createProvider(parseDatabaseUrl(urlOf(mainDb)), { dataDir: work });
    let appOwner: string | undefined;
    try {
      expect((await applyPlan(settings, { log })).failures).toEqual([]);
      const seen = await mainProvider.observeSchema(schema);
      appOwner = seen.exists ? seen.owner : undefined;
      if (!appOwner) throw new Error('the app schema carries no marker');
      const ours: string = appOwner;
      const place: DataPlace = { kind: 'schema', database: mainDb, schema };
      await query(
        mainDb,
        `CREATE TABLE ${pg.escapeIdentifier(schema)}.big AS SELECT g AS id FROM generate_series(1, 300000) g`,
      );
      const file = path.join(dir, 'apply.pgdump');
      await dumpToFile(transfer, place, file);
      const mainTransfer = createPostgresTransfer({ url: urlOf(mainDb), dataDir: work });
      // A restore killed after its load (a temporary schema), another during it (its staging database).
      const loaded = await mainTransfer.load(place, file, appOwner);
      await killLoadMidway(
        { dialect: 'postgres', url: urlOf(mainDb), place, file, owner: appOwner },
        async () => {
          return (await mainProvider.listLeftovers()).some(
            (l) => l.owner === appOwner && l.name.startsWith('_avtmp_'),
          );
        },
      );
      const mine = async () =>
        (await mainProvider.listLeftovers()).filter((l) => l.owner === appOwner).map((l) => l.name);
      const left = await mine();
      expect(left).toHaveLength(2);
      expect(left).toContain(loaded.kind === 'schema' ? loaded.schema : '');

      const report = await applyPlan(settings, { log });
      expect(report.failures).toEqual([]);
      expect(report.outcomes.filter((o) => o.step.action === 'sweep').map((o) => o.result)).toEqual([
        'deleted',
        'deleted',
      ]);
      expect(await mine()).toEqual([]);
      expect(await mainProvider.observeSchema(schema)).toEqual({ exists: true, owner: ours });
    } finally {
      // The staging database lives beside the main one, not in it: swept here if the test failed.
      for (const l of await mainProvider.listLeftovers()) {
        if (l.owner === appOwner) await mainProvider.sweepLeftover(l.name, l.owner);
      }
      await mainProvider.close();
      await fs.rm(work, { recursive: true, force: true });
    }
  });

  it('refuses a pg_dump older than the server, naming the version it needs', async () => {
    const fake = await fs.mkdtemp(path.join(os.tmpdir(), 'avx-oldpg-'));
    for (const tool of ['pg_dump', 'pg_restore']) {
      await fs.writeFile(path.join(fake, tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 11.22"\n`, {
        mode: 0o755,
      });
    }
    const saved = process.env.PATH;
    process.env.PATH = fake;
    try {
      const err = await failure(transfer.checkTools());
      expect(err.code).toBe('TOOL_MISSING');
      expect(err.message).toMatch(/pg_dump 11 cannot dump PostgreSQL \d+ .*install pg_dump \d+ or newer/);
    } finally {
      process.env.PATH = saved;
      await fs.rm(fake, { recursive: true, force: true });
    }
  });

  it('answers TOOL_MISSING naming postgresql-client when pg_dump is not on PATH', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'avx-nopath-'));
    const saved = process.env.PATH;
    process.env.PATH = empty;
    try {
      const err = await failure(transfer.checkTools());
      expect(err.code).toBe('TOOL_MISSING');
      expect(err.message).toMatch(/pg_(dump|restore).*postgresql-client/);
      const dumped = await failure(
        dumpToFile(transfer, { kind: 'database', database: 'postgres' }, path.join(dir, 'none')),
      );
      expect(dumped.code).toBe('TOOL_MISSING');
    } finally {
      process.env.PATH = saved;
      await fs.rm(empty, { recursive: true, force: true });
    }
  });
});
