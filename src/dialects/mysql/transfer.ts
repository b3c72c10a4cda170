/**
 * MySQL/MariaDB's data transfer (src/ops/transfer.ts): `mariadb-dump --single-transaction` of the
 * app's database (one consistent snapshot of its InnoDB tables, no `CREATE DATABASE`/`USE`, so it
 * loads into any name), `mariadb` into a temporary database beside it, and a swap.
 *
 * MariaDB cannot rename a database: the swap is one `RENAME TABLE` statement (atomic) that moves
 * every table of the app's database aside and every loaded table in. Views, triggers, stored
 * routines and events cannot move between databases that way (the server refuses: "Trigger in
 * wrong schema", "Changing schema … is not allowed"), so a database holding any of them is refused
 * (UNSUPPORTED_MODE) at load, before the app is stopped.
 *
 * Temporary databases are named and marked (`CREATE DATABASE … COMMENT <owner>`, atomic) as the
 * provider's leftovers, so what a killed restore left is listed and swept. The password reaches
 * the tools by `MYSQL_PWD`, never on a command line.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import mysql from 'mysql2/promise';
import { AppvisorError } from '../../errors.js';
import { runTool, type Tool, toolVersion, transferError } from '../../ops/tools.js';
import type { DataPlace, DataTransfer, TransferOptions } from '../../ops/transfer.js';
import type { OpOptions } from '../../providers/provider.js';
import { validateOwner } from '../identifiers.js';
import { type DatabaseUrl, parseServerUrl, serverOf, withDatabase } from '../url.js';
import { translateError } from './errors.js';
import { quoteIdentifier, quoteLiteral, validateIdentifier } from './identifiers.js';
import { isTemporaryName, temporaryName } from './provider.js';

/** The tools, MariaDB's names first, then MySQL's. */
const DUMP_TOOLS: readonly Tool[] = [
  { command: 'mariadb-dump', debianPackage: 'mariadb-client' },
  { command: 'mysqldump', debianPackage: 'mariadb-client' },
];
const CLIENT_TOOLS: readonly Tool[] = [
  { command: 'mariadb', debianPackage: 'mariadb-client' },
  { command: 'mysql', debianPackage: 'mariadb-client' },
];

interface Tools {
  readonly dump: Tool;
  readonly client: Tool;
}

export function createMysqlTransfer(opts: TransferOptions): DataTransfer {
  return new MysqlTransfer(parseServerUrl(opts.url, 'mysql', 3306));
}

class MysqlTransfer implements DataTransfer {
  readonly dialect = 'mysql' as const;
  readonly member = 'data.sql';
  readonly #url: DatabaseUrl;
  readonly #server: string;
  #tools: Promise<Tools> | undefined;

  constructor(url: DatabaseUrl) {
    this.#url = url;
    this.#server = serverOf(url);
  }

  async checkTools(opts: OpOptions = {}): Promise<void> {
    this.#tools = undefined;
    await this.#resolveTools(opts);
  }

  async dump(place: DataPlace, out: Writable, opts: OpOptions = {}): Promise<void> {
    const db = databaseOf(place);
    const { dump } = await this.#resolveTools(opts);
    await this.#tool(`dump database \`${db}\``, opts, () =>
      runTool(dump, {
        args: [
          ...this.#connectionArgs(),
          '--single-transaction',
          '--routines',
          '--triggers',
          '--events',
          '--hex-blob',
          '--no-tablespaces',
          '--default-character-set=utf8mb4',
          db,
        ],
        env: this.#env(),
        stdout: out,
        what: `${dump.command} of database \`${db}\``,
        ...sig(opts),
      }),
    );
  }

  async load(place: DataPlace, dumpFile: string, owner: string, opts: OpOptions = {}): Promise<DataPlace> {
    const db = databaseOf(place);
    validateOwner(owner);
    await fs.promises.access(dumpFile, fs.constants.R_OK);
    const { client } = await this.#resolveTools(opts);
    await this.#sql(`check database \`${db}\``, opts, (c) => refuseUnmovable(c, db));
    const temp = temporaryName();
    await this.#sql(`create temporary database \`${temp}\``, opts, (c) => createMarked(c, temp, owner));
    try {
      await this.#tool(`load into temporary database \`${temp}\` for \`${db}\``, opts, () =>
        runTool(client, {
          args: [
            ...this.#connectionArgs(),
            '--connect-timeout=10',
            '--batch',
            '--binary-mode',
            `--database=${temp}`,
          ],
          env: this.#env(),
          stdin: fs.createReadStream(dumpFile),
          what: `${client.command} loading ${dumpFile} into temporary database \`${temp}\``,
          ...sig(opts),
        }),
      );
      await this.#sql(`check temporary database \`${temp}\``, opts, (c) => refuseUnmovable(c, temp));
      return { kind: 'database', database: temp };
    } catch (err) {
      await this.discard({ kind: 'database', database: temp }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * One RENAME TABLE moves the app's tables into a marked aside database and the loaded ones
   * into the app's; killed before it, the app's data is untouched; after it, only marked
   * temporary databases are left (swept as leftovers).
   */
  async swap(place: DataPlace, loaded: DataPlace, owner: string, opts: OpOptions = {}): Promise<void> {
    const db = databaseOf(place);
    const temp = temporaryOf(loaded);
    validateOwner(owner);
    const aside = temporaryName();
    await this.#sql(`swap \`${temp}\` into \`${db}\``, opts, async (c) => {
      await refuseUnmovable(c, db);
      await refuseUnmovable(c, temp);
      await terminateConnections(c, [db, temp]);
      const exists = await databaseExists(c, db);
      if (!exists) await createMarked(c, db, owner);
      const current = exists ? await tablesOf(c, db) : [];
      const incoming = await tablesOf(c, temp);
      if (current.length > 0) await createMarked(c, aside, owner);
      const moves = [
        ...current.map((t) => `${qualified(db, t)} TO ${qualified(aside, t)}`),
        ...incoming.map((t) => `${qualified(temp, t)} TO ${qualified(db, t)}`),
      ];
      try {
        if (moves.length > 0) await c.query(`RENAME TABLE ${moves.join(', ')}`);
      } catch (err) {
        // Nothing moved: put things back as they were (a clone's new database goes again).
        if (!exists)
          await c.query(`DROP DATABASE IF EXISTS ${quoteIdentifier('database', db)}`).catch(() => undefined);
        if (current.length > 0)
          await c
            .query(`DROP DATABASE IF EXISTS ${quoteIdentifier('database', aside)}`)
            .catch(() => undefined);
        throw err;
      }
      if (exists && (await supportsComments(c))) {
        await c.query(`ALTER DATABASE ${quoteIdentifier('database', db)} COMMENT = ${quoteLiteral(owner)}`);
      }
      // The data is in place: a drop that fails leaves a marked temporary database, swept later.
      for (const leftover of [aside, temp]) {
        await c
          .query(`DROP DATABASE IF EXISTS ${quoteIdentifier('database', leftover)}`)
          .catch(() => undefined);
      }
    });
  }

  async discard(loaded: DataPlace, opts: OpOptions = {}): Promise<void> {
    const temp = temporaryOf(loaded);
    await this.#sql(`drop temporary database \`${temp}\``, opts, async (c) => {
      await terminateConnections(c, [temp]);
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdentifier('database', temp)}`);
    });
  }

  /** The first of each tool pair on PATH, found once (checkTools looks again). */
  #resolveTools(opts: OpOptions): Promise<Tools> {
    this.#tools ??= (async () => ({
      dump: await firstInstalled(DUMP_TOOLS, opts.signal),
      client: await firstInstalled(CLIENT_TOOLS, opts.signal),
    }))();
    const tools = this.#tools;
    tools.catch(() => {
      if (this.#tools === tools) this.#tools = undefined;
    });
    return tools;
  }

  #connectionArgs(): string[] {
    const u = this.#url;
    return [
      '--protocol=TCP',
      `--host=${u.host ?? '127.0.0.1'}`,
      `--port=${u.port ?? 3306}`,
      ...(u.user ? [`--user=${u.user}`] : []),
    ];
  }

  #env(): Record<string, string> {
    return this.#url.password !== undefined ? { MYSQL_PWD: this.#url.password } : {};
  }

  async #tool<T>(operation: string, opts: OpOptions, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw transferError(err, { dialect: 'mysql', server: this.#server, operation }, translateError);
    }
  }

  async #sql<T>(operation: string, opts: OpOptions, work: (c: mysql.Connection) => Promise<T>): Promise<T> {
    opts.signal?.throwIfAborted();
    let conn: mysql.Connection | undefined;
    try {
      conn = await mysql.createConnection({ uri: withDatabase(this.#url, ''), connectTimeout: 10_000 });
      conn.on('error', () => undefined);
      return await work(conn);
    } catch (err) {
      if (err instanceof AppvisorError) throw err;
      throw translateError(err, { server: this.#server, operation });
    } finally {
      await conn?.end().catch(() => undefined);
    }
  }
}

async function firstInstalled(tools: readonly Tool[], signal?: AbortSignal): Promise<Tool> {
  for (const tool of tools) {
    try {
      await toolVersion(tool, signal);
      return tool;
    } catch (err) {
      if (!(err instanceof AppvisorError && err.code === 'TOOL_MISSING')) throw err;
    }
  }
  const first = tools[0]!;
  throw new AppvisorError('TOOL_MISSING', {
    tool: `${first.command} (or ${tools
      .slice(1)
      .map((t) => t.command)
      .join(', ')})`,
    package: first.debianPackage,
  });
}

async function createMarked(c: mysql.Connection, name: string, owner: string): Promise<void> {
  const comment = (await supportsComments(c)) ? ` COMMENT ${quoteLiteral(owner)}` : '';
  await c.query(`CREATE DATABASE ${quoteIdentifier('database', name)} CHARACTER SET utf8mb4${comment}`);
}

async function supportsComments(c: mysql.Connection): Promise<boolean> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'SCHEMATA' AND COLUMN_NAME = 'SCHEMA_COMMENT'`,
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

async function databaseExists(c: mysql.Connection, name: string): Promise<boolean> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(
    'SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
    [name],
  );
  return rows.length > 0;
}

async function tablesOf(c: mysql.Connection, db: string): Promise<string[]> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(
    `SELECT TABLE_NAME AS name FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE') ORDER BY TABLE_NAME`,
    [db],
  );
  return rows.map((r) => String(r.name));
}

/** Views, triggers, routines and events stay behind in a RENAME TABLE: refused, before any change. */
async function refuseUnmovable(c: mysql.Connection, db: string): Promise<void> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(
    `SELECT 'views' AS kind, COUNT(*) AS n FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
     UNION ALL SELECT 'triggers', COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
     UNION ALL SELECT 'routines', COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
     UNION ALL SELECT 'events', COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`,
    [db, db, db, db],
  );
  const found = rows.filter((r) => Number(r.n) > 0).map((r) => `${r.n} ${r.kind}`);
  if (found.length > 0) {
    throw new AppvisorError('UNSUPPORTED_MODE', {
      detail: `database \`${db}\` has ${found.join(', ')}; a MariaDB restore moves tables only (RENAME TABLE), so it does not restore databases with views, triggers, routines or events`,
    });
  }
}

/** The app is stopped; a connection still open (another process's pool) would block the rename. */
async function terminateConnections(c: mysql.Connection, dbs: readonly string[]): Promise<void> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(
    'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB IN (?) AND ID <> CONNECTION_ID()',
    [dbs],
  );
  for (const r of rows) await c.query(`KILL CONNECTION ${Number(r.id)}`).catch(() => undefined);
}

function qualified(db: string, table: string): string {
  return `${quoteIdentifier('database', db)}.${mysql.escapeId(table, true)}`;
}

function databaseOf(place: DataPlace): string {
  if (place.kind !== 'database') {
    throw new AppvisorError('UNSUPPORTED_MODE', { detail: 'new-schema needs a PostgreSQL main database' });
  }
  return validateIdentifier('database', place.database);
}

function temporaryOf(loaded: DataPlace): string {
  const name = databaseOf(loaded);
  if (!isTemporaryName(name)) {
    throw new AppvisorError('INVALID_IDENTIFIER', {
      kind: 'database',
      name: JSON.stringify(name),
      reason: 'only a temporary database a load made is swapped in or discarded',
    });
  }
  return name;
}

function sig(opts: OpOptions): { signal?: AbortSignal } {
  return opts.signal ? { signal: opts.signal } : {};
}
