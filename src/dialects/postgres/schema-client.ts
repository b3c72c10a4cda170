import type { SqlClient } from '../../providers/provider.js';
import { toNumberedPlaceholders } from './placeholders.js';
import type { SchemaSession, SharedSchemaPool } from './shared-pool.js';

/**
 * A new-schema app's SqlClient on its database's shared pool: every statement checks out a
 * connection set to the app's schema, a transaction keeps one connection from BEGIN to its end.
 * Session state set outside a transaction (`SET …`) does not outlive its statement; inside
 * one (`SET LOCAL` too) it lasts until the transaction ends. The app holds at most `limit`
 * connections at once. `close()` gives up this app's share of the pool.
 */
export class SchemaClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly schema: string;
  readonly #shared: SharedSchemaPool;
  /** Most connections of the pool this app holds at once. */
  readonly #limit: number;
  #closed: Promise<void> | undefined;

  constructor(shared: SharedSchemaPool, schema: string, limit: number) {
    shared.retain();
    this.#shared = shared;
    this.schema = schema;
    this.#limit = limit;
  }

  query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.#run((s) => new SessionClient(s).query<T>(sql, params));
  }

  execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.#run((s) => new SessionClient(s).execute(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.#run((s) => new SessionClient(s).exec(sql));
  }

  async transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return this.#run(async (session) => {
      await session.query('BEGIN');
      try {
        const result = await fn(new SessionClient(session));
        await session.query('COMMIT');
        return result;
      } catch (err) {
        await session.query('ROLLBACK').catch((rollbackErr: unknown) => session.markBroken(rollbackErr));
        throw err;
      }
    });
  }

  close(): Promise<void> {
    this.#closed ??= this.#shared.release();
    return this.#closed;
  }

  async #run<T>(work: (session: SchemaSession) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error(`the client of schema "${this.schema}" is closed`);
    const session = await this.#shared.checkout(this.schema, this.#limit);
    try {
      return await work(session);
    } finally {
      session.release();
    }
  }
}

/** The client handed to a transaction's function: every statement on its one connection. */
class SessionClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly #session: SchemaSession;

  constructor(session: SchemaSession) {
    this.#session = session;
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const result = await this.#session.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rows as T[];
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    const result = await this.#session.query(toNumberedPlaceholders(sql), params as unknown[]);
    return result.rowCount ?? 0;
  }

  async exec(sql: string): Promise<void> {
    await this.#session.query(sql);
  }

  /** Already in one: the function joins it. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return fn(this);
  }

  /** The transaction's end gives the connection back. */
  async close(): Promise<void> {}
}
