import mysql from 'mysql2/promise';
import type { SqlClient } from '../../providers/provider.js';

export interface MysqlClientOptions {
  readonly uri: string;
  /** @default 10 */
  readonly connectionLimit?: number;
  /** Idle connections close after this long. @default 10000 */
  readonly idleTimeout?: number;
  /** @default 5000 */
  readonly connectTimeout?: number;
}

type Queryable = mysql.Pool | mysql.PoolConnection;

/** A SqlClient over a mysql2 pool (or, inside a transaction, one pooled connection). */
export class MysqlClient implements SqlClient {
  readonly dialect = 'mysql' as const;
  readonly pool: mysql.Pool;
  readonly #target: Queryable;

  constructor(options: MysqlClientOptions | { pool: mysql.Pool; target: Queryable }) {
    if ('pool' in options) {
      this.pool = options.pool;
      this.#target = options.target;
      return;
    }
    this.pool = mysql.createPool({
      uri: options.uri,
      connectionLimit: options.connectionLimit ?? 10,
      maxIdle: 0,
      idleTimeout: options.idleTimeout ?? 10_000,
      connectTimeout: options.connectTimeout ?? 5_000,
      // exec() runs migration scripts of several statements; parameters always go through `?`.
      multipleStatements: true,
      dateStrings: true,
      supportBigNumbers: true,
    });
    this.#target = this.pool;
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const [rows] = await this.#target.query(sql, params as unknown[]);
    return Array.isArray(rows) ? (rows as T[]) : [];
  }

  /** `affectedRows`: rows matched and changed (a compare-and-set always changes its version column). */
  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    const [result] = await this.#target.query<mysql.ResultSetHeader>(sql, params as unknown[]);
    return result.affectedRows;
  }

  async exec(sql: string): Promise<void> {
    await this.#target.query(sql);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    if (this.#target !== this.pool) return fn(this);
    const conn = await this.pool.getConnection();
    try {
      await conn.beginTransaction();
      const result = await fn(new MysqlClient({ pool: this.pool, target: conn }));
      await conn.commit();
      return result;
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
  }

  async close(): Promise<void> {
    if (this.#target !== this.pool) return;
    await this.pool.end();
  }
}
