import type { SqlClient } from '../../providers/provider.js';
import { PostgresSessionClient } from './session-client.js';
import type { SharedSchemaPool } from './shared-pool.js';

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
    return this.#run((c) => c.query<T>(sql, params));
  }

  execute(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.#run((c) => c.execute(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.#run((c) => c.exec(sql));
  }

  /** BEGIN … COMMIT on one connection; a connection left inside it is discarded on release. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> {
    return this.#run((c) => c.transaction(fn));
  }

  close(): Promise<void> {
    this.#closed ??= this.#shared.release();
    return this.#closed;
  }

  async #run<T>(work: (client: PostgresSessionClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error(`the client of schema "${this.schema}" is closed`);
    const session = await this.#shared.checkout(this.schema, this.#limit);
    try {
      return await work(new PostgresSessionClient(session));
    } finally {
      session.release();
    }
  }
}
