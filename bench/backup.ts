/**
 * `appvisor backup` and `appvisor restore` of one app with N rows, per backend, as a user runs
 * them, next to the bare tools on the same data (issue 12's benchmark):
 * - A real project per backend in a temp folder (bench/lib.ts's workspace): `apps.d/<app>.yaml`
 *   for one app (`sqlite`: a file under `data/apps/` beside the default `sqlite:` main;
 *   `pg-database` / `pg-schema`: a private main database `avb…_main` on the PostgreSQL server,
 *   the app a database of its own or a schema in it; `mysql`: the main database on MariaDB, the
 *   app a database of its own), converged with `applyPlan` (= `appvisor apply`). N rows go into
 *   a bench table `items` (id, name, email, 64-char payload) created in the app's database next
 *   to the sample app's own tables; the app's whole database (or schema) is what is backed up.
 * - Timed, median of R runs: `backup(ops, app, file)` (the whole archive: dump, gzip, sha256 of
 *   every member, sealed secret, rename into place) and `restore(ops, file)` (verify every
 *   member, load into a temporary place, swap, history entry), each in a context of its own
 *   from `openOpsContext(settings, …)` exactly as the CLI opens one; opening + closing a context
 *   (state store, leader lease, providers) is not part of the two figures but timed on its own
 *   (`ctxMs`, the median over every context the run opened). After every restore the app's
 *   `items` holds exactly N rows, or the bench fails (the bare restores are counted too).
 * - The bare tools on the same data: PostgreSQL `pg_dump -Fc` of the database (`-n` of the
 *   schema) and CREATE DATABASE + `pg_restore`; MariaDB `mariadb-dump --single-transaction` and
 *   CREATE DATABASE + `mariadb` < file; SQLite better-sqlite3's `db.backup(file)` (the online
 *   backup API, what `sqlite3 .backup` does) and a file copy as the restore. The ratios
 *   backup ÷ bare dump and restore ÷ bare restore, the archive's size and the bare dump's, and
 *   what gzip alone costs on the bare dump (node:zlib at the archive's default level 6, and at 1).
 * - The transfer alone (src/ops/transfer.ts), as before: `transfer.dump` to a file, `load`
 *   (a marked temporary database, schema or file) and `swap`: where restore's time goes. For
 *   PostgreSQL databases also `CREATE DATABASE … TEMPLATE app` (a clone without dump and
 *   restore; it needs the source without connections, i.e. stopped).
 * Everything is made under the workspace's prefix (and the restores' temporaries are marked with
 * this run's store id) and removed afterwards, also on Ctrl-C; only 127.0.0.1.
 *
 *   node --import tsx bench/backup.ts [rows=100000] [repeats=3] [backends=sqlite,pg-database,pg-schema,mysql]
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import type mysql from 'mysql2/promise';
import pg from 'pg';
import { parseDatabaseUrl } from '../src/dialects/registry.js';
import { backup, targetOfRecord } from '../src/ops/backup.js';
import { type OpenedOpsContext, openOpsContext, placeOf } from '../src/ops/context.js';
import { restore } from '../src/ops/restore.js';
import { runTool, type Tool } from '../src/ops/tools.js';
import type { DataPlace } from '../src/ops/transfer.js';
import { createProvider } from '../src/providers/index.js';
import type { SqlClient } from '../src/providers/provider.js';
import { ProviderSet } from '../src/providers/set.js';
import { applyPlan } from '../src/reconcile/commands.js';
import type { DatabaseTarget } from '../src/reconcile/model.js';
import { ownerMarker } from '../src/reconcile/owner.js';
import {
  createWorkspace,
  listArg,
  MYSQL_URL,
  mib,
  numberArg,
  onInterrupt,
  PG_URL,
  progress,
  report,
  round,
  serverAvailable,
  silentLog,
  urlWithDatabase,
  type Workspace,
  withMysql,
  withPg,
} from './lib.js';

type Backend = 'sqlite' | 'pg-database' | 'pg-schema' | 'mysql';
const BACKENDS: readonly Backend[] = ['sqlite', 'pg-database', 'pg-schema', 'mysql'];

const rows = numberArg(0, 100_000);
const repeats = Math.max(1, numberArg(1, 3));
const backends = listArg(2, BACKENDS) as Backend[];
for (const b of backends) if (!BACKENDS.includes(b)) throw new Error(`unknown backend ${b}`);

const PG_DUMP: Tool = { command: 'pg_dump', debianPackage: 'postgresql-client' };
const PG_RESTORE: Tool = { command: 'pg_restore', debianPackage: 'postgresql-client' };
const MARIADB_DUMP: Tool = { command: 'mariadb-dump', debianPackage: 'mariadb-client' };
const MARIADB: Tool = { command: 'mariadb', debianPackage: 'mariadb-client' };

const median = (xs: readonly number[]): number => {
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

/** The bench table, filled with N rows by each dialect's own generator. */
const COLUMNS =
  '(id bigint PRIMARY KEY, name varchar(64) NOT NULL, email varchar(128) NOT NULL, payload text NOT NULL)';
const FILL: Readonly<Record<Backend, string>> = {
  sqlite: `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${rows})
    INSERT INTO items SELECT n, 'user ' || n, 'user' || n || '@example.com', hex(randomblob(32)) FROM g`,
  'pg-database': `INSERT INTO items SELECT g, 'user ' || g, 'user' || g || '@example.com', repeat(md5(g::text), 2) FROM generate_series(1, ${rows}) g`,
  'pg-schema': `INSERT INTO items SELECT g, 'user ' || g, 'user' || g || '@example.com', repeat(md5(g::text), 2) FROM generate_series(1, ${rows}) g`,
  mysql: `INSERT INTO items SELECT seq, CONCAT('user ', seq), CONCAT('user', seq, '@example.com'), REPEAT(MD5(seq), 2) FROM seq_1_to_${rows}`,
};

/** The bare tools on the app's data. */
interface Bare {
  /** Dumps the app's data into `file`. */
  dump(file: string): Promise<unknown>;
  /** Restores `file` into a fresh place (made and removed around); ms of the restore alone, and its row count. */
  restore(file: string, n: number): Promise<{ ms: number; count: number }>;
  /** PostgreSQL databases: `CREATE DATABASE … TEMPLATE app` (the source must have no connections). */
  templateCopy?(n: number): Promise<number>;
}

function bareFor(ws: Workspace, backend: Backend, target: DatabaseTarget): Bare {
  const db = target.database;
  if (backend === 'sqlite') {
    const file = path.join(ws.dataDir, 'apps', `${db}.sqlite`);
    return {
      async dump(out) {
        const src = new Database(file, { readonly: true, fileMustExist: true });
        try {
          await src.backup(out);
        } finally {
          src.close();
        }
      },
      async restore(dumped, n) {
        const copy = path.join(ws.dir, `bare-restore-${n}.sqlite`);
        const ms = await timed(() => fsp.copyFile(dumped, copy));
        const check = new Database(copy, { readonly: true, fileMustExist: true });
        const count = (check.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n;
        check.close();
        await fsp.rm(copy, { force: true });
        return { ms, count };
      },
    };
  }
  if (backend === 'mysql') {
    return {
      dump: (out) =>
        runTool(MARIADB_DUMP, {
          args: [...mysqlArgs(), '--single-transaction', `--result-file=${out}`, db],
          env: mysqlEnv(),
          what: 'bare mariadb-dump',
        }),
      async restore(dumped, n) {
        const fresh = `${ws.prefix}_bare${n}`;
        const t = performance.now();
        await withMysql(MYSQL_URL, (c) => c.query(`CREATE DATABASE \`${fresh}\``));
        await runTool(MARIADB, {
          args: [...mysqlArgs(), `--database=${fresh}`],
          env: mysqlEnv(),
          stdin: fs.createReadStream(dumped),
          what: 'bare mariadb',
        });
        const ms = performance.now() - t;
        const count = await withMysql(MYSQL_URL, async (c) => {
          const [r] = await c.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${fresh}\`.items`);
          await c.query(`DROP DATABASE \`${fresh}\``);
          return Number(r[0]!.n);
        });
        return { ms, count };
      },
    };
  }
  const schema = backend === 'pg-schema' ? target.schema! : undefined;
  return {
    dump: (out) =>
      runTool(PG_DUMP, {
        args: [
          '--format=custom',
          ...(schema ? [`--schema=${schema}`] : []),
          `--dbname=${db}`,
          `--file=${out}`,
        ],
        env: pgEnv(),
        what: 'bare pg_dump',
      }),
    async restore(dumped, n) {
      const fresh = `${ws.prefix}_bare${n}`;
      const t = performance.now();
      await withPg(PG_URL, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(fresh)}`));
      await runTool(PG_RESTORE, {
        args: ['--no-owner', '--exit-on-error', '--single-transaction', `--dbname=${fresh}`, dumped],
        env: pgEnv(),
        what: 'bare pg_restore',
      });
      const ms = performance.now() - t;
      const table = schema ? `${pg.escapeIdentifier(schema)}.items` : 'items';
      const count = await withPg(urlWithDatabase(PG_URL, fresh), async (c) =>
        Number((await c.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n),
      );
      await withPg(PG_URL, (c) => c.query(`DROP DATABASE ${pg.escapeIdentifier(fresh)}`));
      return { ms, count };
    },
    ...(schema
      ? {}
      : {
          templateCopy: async (n: number) => {
            const copy = `${ws.prefix}_tpl${n}`;
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

/**
 * Removes the marked temporaries a restore interrupted by Ctrl-C may have left on the server
 * (the workspace drops the prefixed databases and the folder; schema temporaries go with the
 * main database).
 */
async function sweepTemporaries(ws: Workspace, storeId: string): Promise<void> {
  if (ws.backend === 'sqlite') return;
  const url = ws.backend === 'mysql' ? MYSQL_URL : PG_URL;
  const provider = createProvider(parseDatabaseUrl(url), { dataDir: ws.dataDir });
  try {
    for (const l of await provider.listLeftovers()) {
      if (l.owner.startsWith(ownerMarker(storeId, ''))) await provider.sweepLeftover(l.name, l.owner);
    }
  } finally {
    await provider.close();
  }
}

/** gzip of `from` into `to` at `level`, streamed as the archive writes it. */
const gzipTo = (from: string, to: string, level: number): Promise<void> =>
  pipeline(fs.createReadStream(from), zlib.createGzip({ level }), fs.createWriteStream(to));

/** Runs `work` on a client of the app's database (or schema), as the app opens it. */
async function onApp<T>(
  ws: Workspace,
  target: DatabaseTarget,
  work: (c: SqlClient) => Promise<T>,
): Promise<T> {
  const providers = new ProviderSet(ws.mainUrl, { dataDir: ws.dataDir });
  try {
    const opened = await providers.main.openDatabase(
      target.database,
      target.kind === 'schema' ? { schema: target.schema! } : {},
    );
    try {
      return await work(opened.client);
    } finally {
      await opened.client.close();
    }
  } finally {
    await providers.close();
  }
}

const countItems = (ws: Workspace, target: DatabaseTarget): Promise<number> =>
  onApp(ws, target, async (c) =>
    Number((await c.query<{ n: unknown }>('SELECT count(*) AS n FROM items'))[0]!.n),
  );

async function measure(backend: Backend): Promise<Record<string, unknown>> {
  const ws = await createWorkspace(backend);
  let unhookSweep: (() => void) | undefined;
  let storeId: string | undefined;
  try {
    const app = ws.appName(1);
    await ws.writeManifests([app]);
    const applied = await applyPlan(ws.settings, { log: silentLog, env: {} });
    if (applied.failures.length > 0) throw new Error(`apply failed: ${JSON.stringify(applied.failures)}`);

    const open = (): Promise<OpenedOpsContext> =>
      openOpsContext(ws.settings, { log: silentLog, env: {}, by: 'bench' });
    /** Open + close ms of each context. */
    const ctx: number[] = [];
    /** Runs `work` in a context of its own; returns the ms of `work` (open + close go to `ctx`). */
    const inContext = async (work: (ops: OpenedOpsContext) => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      const ops = await open();
      const t1 = performance.now();
      let t2 = t1;
      try {
        await work(ops);
        t2 = performance.now();
      } finally {
        await ops.close();
      }
      ctx.push(t1 - t0 + (performance.now() - t2));
      return t2 - t1;
    };

    let target!: DatabaseTarget;
    await inContext(async (ops) => {
      const record = await ops.store.getRecord(app);
      if (!record) throw new Error(`${app} has no record after apply`);
      target = targetOfRecord(ops, record);
      storeId = ops.store.storeId;
    });
    ctx.length = 0;
    const id = storeId!;
    unhookSweep = onInterrupt(() => sweepTemporaries(ws, id));
    await onApp(ws, target, async (c) => {
      await c.exec(`CREATE TABLE items ${COLUMNS}`);
      await c.exec(FILL[backend]);
    });
    if ((await countItems(ws, target)) !== rows)
      throw new Error(`${backend}: the fill did not make ${rows} rows`);
    const bare = bareFor(ws, backend, target);

    const backups: number[] = [];
    const restores: number[] = [];
    const bareDumps: number[] = [];
    const bareRestores: number[] = [];
    const dumps: number[] = [];
    const loads: number[] = [];
    const swaps: number[] = [];
    const templates: number[] = [];
    const gzips: number[] = [];
    const gzipsFast: number[] = [];
    let archiveBytes = 0;
    let bareBytes = 0;
    let dumpBytes = 0;
    const owner = ownerMarker(id, app);
    const place: DataPlace = placeOf(target);
    for (let i = 0; i < repeats; i++) {
      progress(`${backend}: run ${i + 1} of ${repeats}`);
      const file = path.join(ws.dir, `${app}-${i}.tar.gz`);
      backups.push(await inContext((ops) => backup(ops, app, file)));
      archiveBytes = (await fsp.stat(file)).size;
      restores.push(await inContext((ops) => restore(ops, file)));
      const n = await countItems(ws, target);
      if (n !== rows) throw new Error(`${backend}: ${n} rows after restore, expected ${rows}`);
      await fsp.rm(file, { force: true });

      const bareFile = path.join(ws.dir, `${app}-${i}.bare`);
      bareDumps.push(await timed(() => bare.dump(bareFile)));
      bareBytes = (await fsp.stat(bareFile)).size;
      gzips.push(await timed(() => gzipTo(bareFile, `${bareFile}.gz`, zlib.constants.Z_DEFAULT_COMPRESSION)));
      gzipsFast.push(await timed(() => gzipTo(bareFile, `${bareFile}.gz`, 1)));
      await fsp.rm(`${bareFile}.gz`, { force: true });
      const bareRestored = await bare.restore(bareFile, i);
      if (bareRestored.count !== rows)
        throw new Error(`${backend}: ${bareRestored.count} rows after the bare restore, expected ${rows}`);
      bareRestores.push(bareRestored.ms);
      await fsp.rm(bareFile, { force: true });

      // The transfer alone, with the context's own transfer (what backup and restore call).
      await inContext(async (ops) => {
        const transfer = ops.transferFor(target);
        const dumpFile = path.join(ws.dir, `${app}-${i}.dump`);
        dumps.push(await timed(() => transfer.dump(place, fs.createWriteStream(dumpFile))));
        dumpBytes = (await fsp.stat(dumpFile)).size;
        let loaded: DataPlace | undefined;
        loads.push(
          await timed(async () => {
            loaded = await transfer.load(place, dumpFile, owner);
          }),
        );
        swaps.push(await timed(() => transfer.swap(place, loaded!, owner)));
        await fsp.rm(dumpFile, { force: true });
      });
      const swapped = await countItems(ws, target);
      if (swapped !== rows) throw new Error(`${backend}: ${swapped} rows after the swap, expected ${rows}`);
      if (bare.templateCopy) templates.push(await bare.templateCopy(i));
    }
    const ms = (xs: readonly number[]) => round(median(xs), 0);
    return {
      backend,
      rows,
      archiveMiB: mib(archiveBytes),
      bareMiB: mib(bareBytes),
      backupMs: ms(backups),
      bareDumpMs: ms(bareDumps),
      backupRatio: round(median(backups) / median(bareDumps), 2),
      restoreMs: ms(restores),
      bareRestoreMs: ms(bareRestores),
      restoreRatio: round(median(restores) / median(bareRestores), 2),
      gzipMs: ms(gzips),
      gzip1Ms: ms(gzipsFast),
      ctxMs: ms(ctx),
      dumpMiB: mib(dumpBytes),
      dumpMs: ms(dumps),
      loadMs: ms(loads),
      swapMs: ms(swaps),
      ...(templates.length > 0 ? { templateCopyMs: ms(templates) } : {}),
    };
  } finally {
    unhookSweep?.();
    if (storeId) await sweepTemporaries(ws, storeId).catch((err) => console.error('sweep failed:', err));
    await ws.dispose();
  }
}

const results: Record<string, unknown>[] = [];
const skipped: string[] = [];
for (const backend of backends) {
  if (backend !== 'sqlite') {
    const server = backend === 'mysql' ? 'mysql' : 'postgres';
    if (!(await serverAvailable(server, server === 'mysql' ? MYSQL_URL : PG_URL))) {
      console.log(`${backend}: server unreachable, skipped`);
      skipped.push(backend);
      continue;
    }
  }
  progress(`${backend}: ${rows} rows`);
  results.push(await measure(backend));
}

report(`backup and restore of one app, ${rows} rows, median of ${repeats} (ms)`, results, {
  bench: 'backup',
  rows,
  repeats,
  results,
  skipped,
});
