import crypto from 'node:crypto';
import mysql from 'mysql2/promise';
import { AppvisorError } from '../../errors.js';
import { abortable, abortReason } from '../../providers/abort.js';
import { onNewConnection } from '../../providers/connection.js';
import type {
  AppDatabase,
  Catalog,
  Leftover,
  Observation,
  OperationResult,
  OpOptions,
  Provider,
  SqlClient,
} from '../../providers/provider.js';
import { validateLeftover, validateOwner } from '../identifiers.js';
import { type DatabaseUrl, serverOf, withDatabase } from '../url.js';
import { MysqlClient } from './client.js';
import { translateError } from './errors.js';
import { quoteIdentifier, quoteLiteral, validateIdentifier } from './identifiers.js';

export interface MysqlProviderOptions {
  /** Admin pool size. @default 2 */
  readonly maxAdminConnections?: number;
  /** Idle admin and app connections close after this long. @default 10000 */
  readonly idleTimeoutMillis?: number;
  /** @default 5000 */
  readonly connectTimeoutMillis?: number;
}

const RESERVED_DATABASES = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

/** Temporary databases of a restore (src/dialects/mysql/transfer.ts): its load, or the old data set aside. */
const TEMP_PREFIX = '_avtmp_';
const TEMP_NAME = /^_avtmp_[0-9a-f]{16}$/;

/** A fresh temporary database name that `listLeftovers` finds (once it carries a marker). */
export function temporaryName(): string {
  return `${TEMP_PREFIX}${crypto.randomBytes(8).toString('hex')}`;
}

export function isTemporaryName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** 1007 ER_DB_CREATE_EXISTS: a concurrent CREATE DATABASE won. */
const ER_DB_CREATE_EXISTS = 1007;

/**
 * MySQL / MariaDB: `new-database` on the server of `url`. The ownership marker is the
 * database's own comment (`CREATE DATABASE … COMMENT`, MariaDB 10.5+), set atomically with
 * the CREATE; a server without schema comments gets a plain CREATE and no marker.
 */
export class MysqlProvider implements Provider {
  readonly dialect = 'mysql' as const;
  readonly server: string;
  readonly #url: DatabaseUrl;
  readonly #pool: mysql.Pool;
  readonly #options: MysqlProviderOptions;
  #commentSupport: boolean | undefined;

  constructor(url: DatabaseUrl, options: MysqlProviderOptions = {}) {
    if (url.dialect !== 'mysql') throw new TypeError(`MysqlProvider needs a mysql URL, got ${url.redacted}`);
    this.#url = url;
    this.#options = options;
    this.server = serverOf(url);
    this.#pool = mysql.createPool({
      ...connectionConfig(url),
      connectionLimit: options.maxAdminConnections ?? 2,
      maxIdle: 0,
      idleTimeout: options.idleTimeoutMillis ?? 10_000,
      connectTimeout: options.connectTimeoutMillis ?? 5_000,
    });
  }

  async observeDatabase(name: string, opts: OpOptions = {}): Promise<Observation> {
    validateIdentifier('database', name);
    return this.#run(`observe database \`${name}\``, opts.signal, (c) => this.#observe(c, name));
  }

  async createDatabase(name: string, owner: string, opts: OpOptions = {}): Promise<OperationResult> {
    const quoted = quoteIdentifier('database', name);
    validateOwner(owner);
    this.#refuseReserved(name);
    return this.#run(`create database \`${name}\``, opts.signal, async (conn) => {
      if ((await this.#observe(conn, name)).exists) return 'unchanged';
      const comment = (await this.#supportsComments(conn)) ? ` COMMENT ${quoteLiteral(owner)}` : '';
      try {
        await conn.query(`CREATE DATABASE ${quoted} CHARACTER SET utf8mb4${comment}`);
      } catch (err) {
        if ((err as { errno?: unknown }).errno === ER_DB_CREATE_EXISTS) return 'unchanged';
        throw err;
      }
      return 'created';
    });
  }

  async dropDatabase(name: string, opts: OpOptions = {}): Promise<OperationResult> {
    const quoted = quoteIdentifier('database', name);
    this.#refuseReserved(name, 'drop');
    return this.#run(`drop database \`${name}\``, opts.signal, async (conn) => {
      if (!(await this.#observe(conn, name)).exists) return 'unchanged';
      await conn.query(`DROP DATABASE IF EXISTS ${quoted}`);
      return 'deleted';
    });
  }

  async observeSchema(): Promise<Observation> {
    throw unsupportedSchemas();
  }

  async createSchema(): Promise<OperationResult> {
    throw unsupportedSchemas();
  }

  async dropSchema(): Promise<OperationResult> {
    throw unsupportedSchemas();
  }

  /**
   * MySQL creates a database and its marker in one statement, so a create leaves nothing
   * half-made; a restore killed mid-way leaves marked temporary databases (its load, or the old
   * data it set aside), listed here. A server without database comments has no markers: nothing.
   */
  async listLeftovers(opts: OpOptions = {}): Promise<readonly Leftover[]> {
    return this.#run('list leftover temporary databases', opts.signal, async (conn) => {
      if (!(await this.#supportsComments(conn))) return [];
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT SCHEMA_NAME AS name, SCHEMA_COMMENT AS owner FROM information_schema.SCHEMATA
          WHERE SCHEMA_NAME LIKE ? ORDER BY SCHEMA_NAME`,
        [`${TEMP_PREFIX.replaceAll('_', '\\_')}%`],
      );
      return (rows as { name: string; owner: string | null }[])
        .filter((r) => TEMP_NAME.test(r.name) && r.owner)
        .map((r) => ({ name: r.name, owner: r.owner! }));
    });
  }

  /** Every database on the server, with its comment as the marker where the server has comments. */
  async catalog(opts: OpOptions = {}): Promise<Catalog> {
    return this.#run('list databases', opts.signal, async (conn) => {
      const withComment = await this.#supportsComments(conn);
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT SCHEMA_NAME AS name, ${withComment ? 'SCHEMA_COMMENT' : 'NULL'} AS owner
           FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME`,
      );
      return {
        databases: (rows as { name: string; owner: string | null }[]).map((r) =>
          r.owner ? { name: r.name, owner: r.owner } : { name: r.name },
        ),
      };
    });
  }

  async sweepLeftover(name: string, owner: string, opts: OpOptions = {}): Promise<OperationResult> {
    validateLeftover('database', name, TEMP_NAME, owner);
    return this.#run(`sweep temporary database \`${name}\``, opts.signal, async (conn) => {
      const seen = await this.#observe(conn, name);
      if (!seen.exists || seen.owner !== owner) return 'unchanged';
      await conn.query(`DROP DATABASE IF EXISTS ${quoteIdentifier('database', name)}`);
      return 'deleted';
    });
  }

  async openDatabase(
    name: string,
    opts: { schema?: string; maxConnections?: number } = {},
  ): Promise<AppDatabase> {
    validateIdentifier('database', name);
    if (opts.schema !== undefined) throw unsupportedSchemas();
    const url = withDatabase(this.#url, name);
    const client: SqlClient = new MysqlClient({
      uri: url,
      ...(opts.maxConnections ? { connectionLimit: opts.maxConnections } : {}),
      idleTimeout: this.#options.idleTimeoutMillis ?? 10_000,
      connectTimeout: this.#options.connectTimeoutMillis ?? 5_000,
    });
    return { dialect: 'mysql', client, connection: { dialect: 'mysql', url, database: name } };
  }

  /** A new connection: `USE` on an admin connection would outlive the work in its session. */
  withConnection<T>(
    name: string,
    opts: { schema?: string },
    work: (client: SqlClient) => Promise<T>,
  ): Promise<T> {
    return onNewConnection(this, name, opts, work);
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined);
  }

  async #observe(conn: mysql.PoolConnection, name: string): Promise<Observation> {
    const withComment = await this.#supportsComments(conn);
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      `SELECT ${withComment ? 'SCHEMA_COMMENT' : 'NULL'} AS owner FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`,
      [name],
    );
    const row = rows[0] as { owner: string | null } | undefined;
    if (!row) return { exists: false };
    return row.owner ? { exists: true, owner: row.owner } : { exists: true };
  }

  /** System databases are never touched; the main database is never dropped. */
  #refuseReserved(name: string, op: 'create' | 'drop' = 'create'): void {
    const main = op === 'drop' && name === this.#url.database;
    if (main || RESERVED_DATABASES.has(name.toLowerCase())) {
      throw new AppvisorError('INVALID_IDENTIFIER', {
        kind: 'database',
        name: JSON.stringify(name),
        reason: main ? 'it is the main database' : 'it is reserved by the server',
      });
    }
  }

  /** MariaDB 10.5+ has database comments; MySQL has none. Asked once per provider. */
  async #supportsComments(conn: mysql.PoolConnection): Promise<boolean> {
    if (this.#commentSupport === undefined) {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM information_schema.COLUMNS
          WHERE TABLE_SCHEMA = 'information_schema' AND TABLE_NAME = 'SCHEMATA' AND COLUMN_NAME = 'SCHEMA_COMMENT'`,
      );
      this.#commentSupport = Number(rows[0]?.n ?? 0) > 0;
    }
    return this.#commentSupport;
  }

  /**
   * Runs `fn` on one admin connection, translating driver errors. On abort the caller gets the
   * signal's reason at once; the statement is killed on the server and the connection destroyed.
   */
  async #run<T>(
    operation: string,
    signal: AbortSignal | undefined,
    fn: (c: mysql.PoolConnection) => Promise<T>,
  ): Promise<T> {
    let conn: mysql.PoolConnection | undefined;
    let aborted = false;
    const work = async (): Promise<T> => {
      const acquired = await this.#pool.getConnection();
      if (aborted) {
        acquired.destroy();
        throw abortReason(signal!);
      }
      conn = acquired;
      try {
        return await fn(acquired);
      } finally {
        if (aborted) acquired.destroy();
        else acquired.release();
      }
    };
    try {
      return await abortable(work, signal, () => {
        aborted = true;
        if (conn) this.#killQuery(conn.threadId);
      });
    } catch (err) {
      if (signal?.aborted && err === signal.reason) throw err;
      throw translateError(err, { server: this.server, operation });
    }
  }

  /** Best effort: kills the statement of connection `threadId` from a separate connection. */
  #killQuery(threadId: number): void {
    mysql
      .createConnection({ ...connectionConfig(this.#url), connectTimeout: 2_000 })
      .then(async (killer) => {
        killer.on('error', () => undefined);
        try {
          await killer.query(`KILL QUERY ${Number(threadId)}`);
        } finally {
          await killer.end().catch(() => undefined);
        }
      })
      .catch(() => undefined);
  }
}

/** The server of `url` (credentials and options kept) without selecting a database. */
function connectionConfig(url: DatabaseUrl): mysql.ConnectionOptions {
  return { uri: withDatabase(url, ''), supportBigNumbers: true };
}

function unsupportedSchemas(): AppvisorError {
  return new AppvisorError('UNSUPPORTED_MODE', { detail: 'new-schema needs a PostgreSQL main database' });
}
