import pg from 'pg';
import type { SqlClient } from '../../providers/provider.js';
import { toNumberedPlaceholders } from './placeholders.js';
import { createPool, lendIdleConnections, type PoolOptions } from './pool.js';

export interface PostgresClientOptions extends Omit<PoolOptions, 'startupOptions'> {
  /** Sets `search_path` on every connection of the pool. */
  readonly schema?: string;
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
    this.pool = createPool({
      ...options,
      // Startup options are split at spaces; a space inside the schema name is escaped.
      ...(options.schema ? { startupOptions: `-c search_path=${startupSearchPath(options.schema)}` } : {}),
    });
    this.#target = this.pool;
    if (options.budget) this.#unregister = lendIdleConnections(this.pool, options.budget);
  }

  #unregister: (() => void) | undefined;

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const result = await this.#target.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rows as T[];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    const result = await this.#target.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rowCount ?? 0;
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
    this.#unregister?.();
    if (!this.pool.ended) await this.pool.end();
  }
}

/** `search_path` takes identifiers: the schema quoted as one. */
function startupSearchPath(schema: string): string {
  return pg.escapeIdentifier(schema).replace(/ /g, '\\ ');
}
