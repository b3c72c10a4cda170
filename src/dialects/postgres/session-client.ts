import type pg from 'pg';
import type { SqlClient } from '../../providers/provider.js';
import { toNumberedPlaceholders } from './placeholders.js';

/**
 * A SqlClient over one connection its caller checked out and gives back: statements run on it
 * in turn, and a transaction is BEGIN … COMMIT on it (nested ones run inline). Closing it is
 * the caller's business, so close() does nothing.
 */
/** What the client needs of its connection: a pooled pg client, or a shared pool's session. */
export interface SessionConnection {
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
}

export class PostgresSessionClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly #connection: SessionConnection;
  #inTransaction = false;

  constructor(connection: SessionConnection) {
    this.#connection = connection;
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const result = await this.#connection.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rows as T[];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    const result = await this.#connection.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rowCount ?? 0;
  }

  async exec(sql: string): Promise<void> {
    await this.#connection.query(sql);
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    if (this.#inTransaction) return fn(this);
    await this.#connection.query('BEGIN');
    this.#inTransaction = true;
    try {
      const result = await fn(this);
      await this.#connection.query('COMMIT');
      return result;
    } catch (err) {
      // A failed ROLLBACK means a broken connection; the caller discards it on the error (a
      // shared pool's session: because it is not idle afterwards) anyway.
      await this.#connection.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      this.#inTransaction = false;
    }
  }

  async close(): Promise<void> {}
}
