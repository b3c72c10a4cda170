/**
 * The data transfers of backup and restore (src/ops/transfer.ts) on an app database of N rows,
 * next to the bare tools on the same data:
 * - `pg-database`: `transfer.dump` (pg_dump -Fc of the database) to a file; `transfer.load` (a
 *   marked temporary database + pg_restore) and `transfer.swap` (renames in one transaction, the
 *   old database dropped). Bare: `pg_dump -Fc -f`, and CREATE DATABASE + `pg_restore` into it.
 * - `pg-schema`: the same for a schema (pg_dump -n); the load restores into a staging database,
 *   renames the schema there, dumps and restores it again beside the app's (what a schema load
 *   costs over a database load); the swap is two ALTER SCHEMA … RENAME. Bare: `pg_dump -n`, and
 *   CREATE DATABASE + `pg_restore` into it.
 * - `mysql`: `mariadb-dump --single-transaction` to a file; a marked temporary database +
 *   `mariadb` < file; one RENAME TABLE. Bare: `mariadb-dump`, and CREATE DATABASE + `mariadb`.
 * For PostgreSQL databases also `CREATE DATABASE … TEMPLATE app` (a clone without dump and
 * restore; it needs the source without connections, i.e. stopped).
 * SQLite is not measured: its transfer is not implemented here yet.
 * Each figure is the median of R runs. Everything is created under a per-run prefix on the local
 * servers and dropped afterwards, also on Ctrl-C.
 *
 *   node --import tsx bench/backup.ts [rows=100000] [repeats=3] [backends=pg-database,pg-schema,mysql]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type mysql from 'mysql2/promise';
import pg from 'pg';
import { parseDatabaseUrl } from '../src/dialects/registry.js';
import { runTool, type Tool } from '../src/ops/tools.js';
import type { DataPlace, DataTransfer } from '../src/ops/transfer.js';
import { transferFor } from '../src/ops/transfers.js';
import { createProvider } from '../src/providers/index.js';
import {
  dropMysqlDatabases,
  dropPgDatabases,
  listArg,
  MYSQL_URL,
  numberArg,
  onInterrupt,
  PG_URL,
  progress,
  report,
  round,
  serverAvailable,
  urlWithDatabase,
  withMysql,
  withPg,
} from './lib.js';

type Backend = 'pg-database' | 'pg-schema' | 'mysql';
const BACKENDS: readonly Backend[] = ['pg-database', 'pg-schema', 'mysql'];

const rows = numberArg(0, 100_000);
const repeats = Math.max(1, numberArg(1, 3));
const backends = listArg(2, BACKENDS) as Backend[];
for (const b of backends) if (!BACKENDS.includes(b)) throw new Error(`unknown backend ${b}`);

const prefix = `avb${crypto.randomBytes(3).toString('hex')}`;
const owner = `appvisor:bench-${prefix}:app`;
const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'appvisor-bench-backup-'));

const PG_DUMP: Tool = { command: 'pg_dump', debianPackage: 'postgresql-client' };
const PG_RESTORE: Tool = { command: 'pg_restore', debianPackage: 'postgresql-client' };
const MARIADB_DUMP: Tool = { command: 'mariadb-dump', debianPackage: 'mariadb-client' };
const MARIADB: Tool = { command: 'mariadb', debianPackage: 'mariadb-client' };

/** Removes everything of this run: prefixed databases, marked temporaries, the folder. */
async function cleanup(): Promise<void> {
  for (const url of [PG_URL, MYSQL_URL]) {
    const kind = url === PG_URL ? 'postgres' : 'mysql';
    if (!(await serverAvailable(kind, url))) continue;
    const provider = createProvider(parseDatabaseUrl(url), { dataDir: dir });
    try {
      for (const l of await provider.listLeftovers()) {
        if (l.owner === owner) await provider.sweepLeftover(l.name, owner);
      }
    } finally {
      await provider.close();
    }
    if (kind === 'postgres') await dropPgDatabases(prefix, PG_URL);
    else await dropMysqlDatabases(prefix, MYSQL_URL);
  }
  await fsp.rm(dir, { recursive: true, force: true });
}
const unhook = onInterrupt(cleanup);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

function pgEnv(): Record<string, string> {
  const u = new URL(PG_URL);
  return {
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    ...(u.username ? { PGUSER: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}),
  };
}

function mysqlArgs(): string[] {
  const u = new URL(MYSQL_URL);
  return [
    '--protocol=TCP',
    `--host=${u.hostname}`,
    `--port=${u.port || '3306'}`,
    `--user=${decodeURIComponent(u.username)}`,
  ];
}

function mysqlEnv(): Record<string, string> {
  const u = new URL(MYSQL_URL);
  return u.password ? { MYSQL_PWD: decodeURIComponent(u.password) } : {};
}

interface Setup {
  readonly transfer: DataTransfer;
  readonly place: DataPlace;
  /** The bare tool's dump of the same data into `file`. */
  bareDump(file: string): Promise<unknown>;
  /** The bare tool's restore of `file` into a fresh database (created and dropped around). */
  bareRestore(file: string, n: number): Promise<number>;
  count(): Promise<number>;
  /** PostgreSQL databases: `CREATE DATABASE … TEMPLATE app` (what a clone could use; the source must have no connections). */
  templateCopy?(n: number): Promise<number>;
}

const TABLE = `(id bigint PRIMARY KEY, name varchar(64) NOT NULL, email varchar(128) NOT NULL, payload text NOT NULL)`;

async function setupPostgres(schemaMode: boolean): Promise<Setup> {
  const db = `${prefix}_${schemaMode ? 'main' : 'app'}`;
  const provider = createProvider(parseDatabaseUrl(PG_URL), { dataDir: dir });
  await provider.createDatabase(db, owner);
  await provider.close();
  const schema = 'app';
  const qualified = schemaMode ? `${schema}.items` : 'items';
  await withPg(urlWithDatabase(PG_URL, db), async (c) => {
    if (schemaMode)
      await c.query(`CREATE SCHEMA ${schema}; COMMENT ON SCHEMA ${schema} IS ${pg.escapeLiteral(owner)}`);
    await c.query(`CREATE TABLE ${qualified} ${TABLE}`);
    await c.query(
      `INSERT INTO ${qualified} SELECT g, 'user ' || g, 'user' || g || '@example.com', repeat(md5(g::text), 2) FROM generate_series(1, $1) g`,
      [rows],
    );
  });
  const place: DataPlace = schemaMode
    ? { kind: 'schema', database: db, schema }
    : { kind: 'database', database: db };
  return {
    transfer: transferFor('postgres', { url: PG_URL, dataDir: dir }),
    place,
    bareDump: (file) =>
      runTool(PG_DUMP, {
        args: [
          '--format=custom',
          ...(schemaMode ? [`--schema=${schema}`] : []),
          `--dbname=${db}`,
          `--file=${file}`,
        ],
        env: pgEnv(),
        what: 'bare pg_dump',
      }),
    bareRestore: async (file, n) => {
      const fresh = `${prefix}_bare${n}`;
      const t = performance.now();
      await withPg(PG_URL, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(fresh)}`));
      await runTool(PG_RESTORE, {
        args: ['--no-owner', '--exit-on-error', '--single-transaction', `--dbname=${fresh}`, file],
        env: pgEnv(),
        what: 'bare pg_restore',
      });
      const ms = performance.now() - t;
      await withPg(PG_URL, (c) => c.query(`DROP DATABASE ${pg.escapeIdentifier(fresh)}`));
      return ms;
    },
    count: () =>
      withPg(urlWithDatabase(PG_URL, db), async (c) =>
        Number((await c.query(`SELECT count(*) AS n FROM ${qualified}`)).rows[0].n),
      ),
    ...(schemaMode
      ? {}
      : {
          templateCopy: async (n: number) => {
            const copy = `${prefix}_tpl${n}`;
            const t = performance.now();
            await withPg(PG_URL, (c) =>
              c.query(`CREATE DATABASE ${pg.escapeIdentifier(copy)} TEMPLATE ${pg.escapeIdentifier(db)}`),
            );
            const ms = performance.now() - t;
            await withPg(PG_URL, (c) => c.query(`DROP DATABASE ${pg.escapeIdentifier(copy)}`));
            return ms;
          },
        }),
  };
}

async function setupMysql(): Promise<Setup> {
  const db = `${prefix}_app`;
  const provider = createProvider(parseDatabaseUrl(MYSQL_URL), { dataDir: dir });
  await provider.createDatabase(db, owner);
  await provider.close();
  await withMysql(MYSQL_URL, async (c) => {
    await c.query(`CREATE TABLE \`${db}\`.items ${TABLE} ENGINE=InnoDB`);
    await c.query(
      `INSERT INTO \`${db}\`.items SELECT seq, CONCAT('user ', seq), CONCAT('user', seq, '@example.com'), REPEAT(MD5(seq), 2) FROM \`${db}\`.seq_1_to_${Number(rows)}`,
    );
  });
  return {
    transfer: transferFor('mysql', { url: MYSQL_URL, dataDir: dir }),
    place: { kind: 'database', database: db },
    bareDump: (file) =>
      runTool(MARIADB_DUMP, {
        args: [...mysqlArgs(), '--single-transaction', `--result-file=${file}`, db],
        env: mysqlEnv(),
        what: 'bare mariadb-dump',
      }),
    bareRestore: async (file, n) => {
      const fresh = `${prefix}_bare${n}`;
      const t = performance.now();
      await withMysql(MYSQL_URL, (c) => c.query(`CREATE DATABASE \`${fresh}\``));
      await runTool(MARIADB, {
        args: [...mysqlArgs(), `--database=${fresh}`],
        env: mysqlEnv(),
        stdin: fs.createReadStream(file),
        what: 'bare mariadb',
      });
      const ms = performance.now() - t;
      await withMysql(MYSQL_URL, (c) => c.query(`DROP DATABASE \`${fresh}\``));
      return ms;
    },
    count: () =>
      withMysql(MYSQL_URL, async (c) => {
        const [r] = await c.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${db}\`.items`);
        return Number(r[0]!.n);
      }),
  };
}

const results: Record<string, unknown>[] = [];
const skipped: string[] = [];
try {
  for (const backend of backends) {
    const server = backend === 'mysql' ? 'mysql' : 'postgres';
    if (!(await serverAvailable(server, server === 'mysql' ? MYSQL_URL : PG_URL))) {
      console.log(`${backend}: server unreachable, skipped`);
      skipped.push(backend);
      continue;
    }
    progress(`${backend}: ${rows} rows`);
    const s = backend === 'mysql' ? await setupMysql() : await setupPostgres(backend === 'pg-schema');
    await s.transfer.checkTools();
    const dump: number[] = [];
    const load: number[] = [];
    const swap: number[] = [];
    const bareDump: number[] = [];
    const bareRestore: number[] = [];
    const template: number[] = [];
    let bytes = 0;
    for (let i = 0; i < repeats; i++) {
      const file = path.join(dir, `${backend}-${i}.dump`);
      dump.push(await timed(() => s.transfer.dump(s.place, fs.createWriteStream(file))));
      bytes = (await fsp.stat(file)).size;
      let loaded: DataPlace | undefined;
      load.push(
        await timed(async () => {
          loaded = await s.transfer.load(s.place, file, owner);
        }),
      );
      swap.push(await timed(() => s.transfer.swap(s.place, loaded!, owner)));
      const n = await s.count();
      if (n !== rows) throw new Error(`${backend}: ${n} rows after the swap, expected ${rows}`);
      const bare = path.join(dir, `${backend}-${i}.bare`);
      bareDump.push(await timed(() => s.bareDump(bare)));
      bareRestore.push(await s.bareRestore(bare, i));
      if (s.templateCopy) template.push(await s.templateCopy(i));
      await fsp.rm(file, { force: true });
      await fsp.rm(bare, { force: true });
    }
    const ms = (xs: number[]) => round(median(xs), 0);
    results.push({
      backend,
      rows,
      dumpMiB: round(bytes / 1024 / 1024, 1),
      dumpMs: ms(dump),
      bareDumpMs: ms(bareDump),
      loadMs: ms(load),
      swapMs: ms(swap),
      loadSwapMs: round(median(load) + median(swap), 0),
      bareRestoreMs: ms(bareRestore),
      restoreRatio: round((median(load) + median(swap)) / median(bareRestore), 2),
      ...(template.length > 0 ? { templateCopyMs: ms(template) } : {}),
    });
  }
} finally {
  unhook();
  await cleanup();
}

report(`data transfers, ${rows} rows, median of ${repeats} (ms)`, results, {
  bench: 'backup',
  rows,
  repeats,
  results,
  skipped: [...skipped, 'sqlite (transfer not implemented)'],
});
