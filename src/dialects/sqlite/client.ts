import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { SqlClient } from '../../providers/provider.js';
import type { BatchStatement } from '../types.js';

/**
 * A SqlClient over one better-sqlite3 handle. better-sqlite3 is synchronous; the async
 * surface keeps every dialect interchangeable. A transaction spans awaits, and on one handle
 * every statement run meanwhile would land inside it: so transactions are serialized through a
 * promise chain, `fn` gets a client of its own, and statements through this client wait until
 * the open transaction ends.
 */
export class SqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  readonly db: Database.Database;
  #txChain: Promise<unknown> = Promise.resolve();
  #inTransaction = false;
  /** What `transaction`'s `fn` runs its statements through: straight on the handle. */
  readonly #tx: SqlClient = {
    dialect: 'sqlite',
    query: async (sql, params) => this.#query(sql, params),
    execute: async (sql, params) => this.#execute(sql, params),
    exec: async (sql) => {
      this.db.exec(sql);
    },
    // Nested calls run inline in the open transaction.
    transaction: (fn) => fn(this.#tx),
    close: async () => undefined,
  };

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
    await this.#outsideTransactions();
    return this.#query<T>(sql, params);
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    await this.#outsideTransactions();
    return this.#execute(sql, params);
  }

  async exec(sql: string): Promise<void> {
    await this.#outsideTransactions();
    this.db.exec(sql);
  }

  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.db.exec('BEGIN IMMEDIATE');
      this.#inTransaction = true;
      try {
        const result = await fn(this.#tx);
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

  /**
   * Runs `statements` in one transaction without yielding: nothing else in the process (another
   * reconcile, an app's handle on the same file) runs in between, nor waits on its lock across
   * an await. Resolves with the index of the first statement that did not change `expect` rows
   * (everything rolled back), or undefined once committed.
   */
  async executeBatch(statements: readonly BatchStatement[]): Promise<number | undefined> {
    await this.#outsideTransactions();
    let refused: number | undefined;
    const batch = this.db.transaction(() => {
      for (const [index, { sql, params, expect }] of statements.entries()) {
        const changed = this.#execute(sql, params);
        if (expect !== undefined && changed !== expect) {
          refused = index;
          throw new Error('rolled back');
        }
      }
    });
    try {
      batch.immediate();
    } catch (err) {
      if (refused === undefined) throw err;
    }
    return refused;
  }

  /** At once, even inside an open transaction (closing the handle rolls it back): a stop must not hang on it. */
  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** Waits until no transaction is open on the handle (each queued one has ended). */
  async #outsideTransactions(): Promise<void> {
    while (this.#inTransaction) await this.#txChain;
  }

  #query<T>(sql: string, params: readonly unknown[] = []): T[] {
    const stmt = this.db.prepare(sql);
    const args = params.map(toSqliteValue);
    if (stmt.reader) return stmt.all(...args) as T[];
    stmt.run(...args);
    return [];
  }

  #execute(sql: string, params: readonly unknown[] = []): number {
    return this.db.prepare(sql).run(...params.map(toSqliteValue)).changes;
  }
}

function toSqliteValue(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  if (value === undefined) return null;
  return value;
}
