import pg from 'pg';
import type { SqlClient } from '../provider.js';
import { toNumberedPlaceholders } from './placeholders.js';

export interface PostgresClientOptions {
  readonly connectionString: string;
  /** Sets `search_path` on every connection of the pool. */
  readonly schema?: string;
  /** @default 10 */
  readonly max?: number;
  /** Idle connections close after this long, so idle apps hold no server connections. @default 10000 */
  readonly idleTimeoutMillis?: number;
  /** @default 5000 */
  readonly connectionTimeoutMillis?: number;
  /** Called when an idle pooled connection fails (server restart); the pool replaces it. */
  readonly onError?: (err: Error) => void;
}

type Queryable = pg.Pool | pg.PoolClient;

/** A SqlClient over a `pg` pool (or, inside a transaction, one pooled connection). */
export class PostgresClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  readonly #target: Queryable;

  constructor(options: PostgresClientOptions | { pool: pg.Pool; target: Queryable }) {
    if ('pool' in options) {
      this.pool = options.pool;
      this.#target = options.target;
      return;
    }
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.max ?? 10,
      idleTimeoutMillis: options.idleTimeoutMillis ?? 10_000,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5_000,
      // Let the process exit while idle connections remain.
      allowExitOnIdle: true,
      ...(options.schema ? { options: `-c search_path=${quoteSearchPath(options.schema)}` } : {}),
    });
    // An idle client losing its server emits 'error' on the pool; unhandled, it would crash the process.
    const onError = options.onError ?? (() => undefined);
    this.pool.on('error', onError);
    this.#target = this.pool;
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const result = await this.#target.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rows as T[];
  }

  async exec(sql: string): Promise<void> {
    await this.#target.query(sql);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    if (this.#target !== this.pool) return fn(this);
    const conn = await this.pool.connect();
    let broken = false;
    // pg-pool listens for errors only on idle clients; a connection lost mid-transaction
    // would otherwise throw an unhandled 'error' at the process.
    const onLost = (): void => {
      broken = true;
    };
    conn.on('error', onLost);
    try {
      await conn.query('BEGIN');
      const result = await fn(new PostgresClient({ pool: this.pool, target: conn }));
      await conn.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await conn.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      conn.off('error', onLost);
      conn.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.#target !== this.pool) return;
    if (!this.pool.ended) await this.pool.end();
  }
}

/** `search_path` takes identifiers; quote the schema like an identifier (double quotes doubled). */
function quoteSearchPath(schema: string): string {
  return `"${schema.replace(/"/g, '""')}"`.replace(/ /g, '\\ ');
}
