import Database from 'better-sqlite3';
import type { SqlClient } from '../../providers/provider.js';

/**
 * A query-only SQLite handle. Not `readonly: true`: a read-only handle on a WAL database leaves
 * `-wal`/`-shm` files behind, while a query-only one removes them on close like any last reader,
 * leaving the folder exactly as it was. It also never switches the journal mode (SqliteClient does).
 */
export class QueryOnlySqlite implements SqlClient {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;

  constructor(filename: string) {
    this.#db = new Database(filename, { fileMustExist: true });
    this.#db.pragma('query_only = 1');
    this.#db.pragma('busy_timeout = 5000');
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.#db.prepare(sql).all(...params) as T[];
  }
  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.#db.prepare(sql).run(...params).changes;
  }
  async exec(sql: string): Promise<void> {
    this.#db.exec(sql);
  }
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return fn(this);
  }
  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
