import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { SqlClient } from '../../providers/provider.js';

/**
 * A SqlClient over one better-sqlite3 handle. better-sqlite3 is synchronous; the async
 * surface keeps every dialect interchangeable. Transactions are serialized through a promise
 * chain so two async transactions never interleave on the one handle.
 */
export class SqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  readonly db: Database.Database;
  #txChain: Promise<unknown> = Promise.resolve();
  #inTransaction = false;

  constructor(filename: string, options: { readonly?: boolean; fileMustExist?: boolean } = {}) {
    if (filename !== ':memory:' && !options.readonly)
      fs.mkdirSync(path.dirname(filename), { recursive: true });
    this.db = new Database(filename, {
      ...(options.readonly ? { readonly: true } : {}),
      ...(options.fileMustExist || options.readonly ? { fileMustExist: true } : {}),
    });
    this.db.pragma('busy_timeout = 5000');
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('foreign_keys = ON');
    }
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const stmt = this.db.prepare(sql);
    const args = params.map(toSqliteValue);
    if (stmt.reader) return stmt.all(...args) as T[];
    stmt.run(...args);
    return [];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.db.prepare(sql).run(...params.map(toSqliteValue)).changes;
  }

  async exec(sql: string): Promise<void> {
    this.db.exec(sql);
  }

  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    // Nested calls (fn calling transaction again) run inline in the outer transaction.
    if (this.#inTransaction) return fn(this);
    const run = async (): Promise<T> => {
      this.db.exec('BEGIN IMMEDIATE');
      this.#inTransaction = true;
      try {
        const result = await fn(this);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      } finally {
        this.#inTransaction = false;
      }
    };
    const result = this.#txChain.then(run, run);
    this.#txChain = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function toSqliteValue(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  if (value === undefined) return null;
  return value;
}
