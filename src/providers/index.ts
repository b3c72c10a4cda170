/**
 * The provider for a database server: SQLite files in the data folder, a PostgreSQL server or
 * a MySQL/MariaDB server, chosen by the URL's scheme.
 */
import { MysqlProvider } from './mysql.js';
import { PostgresProvider } from './postgres.js';
import type { Provider, ProviderLog } from './provider.js';
import type { ConnectionBudget } from './sql/budget.js';
import { SqliteProvider } from './sqlite.js';
import { type DatabaseUrl, parseDatabaseUrl } from './url.js';

export interface ProviderOptions {
  /** The data folder; SQLite app databases live in its `apps/` subfolder. */
  readonly dataDir: string;
  /** Receives problems a provider handles itself (an idle connection dropped by the server). */
  readonly log?: ProviderLog;
  /** PostgreSQL: most open connections of all app pools on this server. */
  readonly budget?: ConnectionBudget;
}

/**
 * Creates the provider for `serverUrl`: the main database URL or a `new-connection` URL.
 * For PostgreSQL, `new-schema` schemas live in the database the URL names.
 */
export function createProvider(serverUrl: string | DatabaseUrl, opts: ProviderOptions): Provider {
  const url = typeof serverUrl === 'string' ? parseDatabaseUrl(serverUrl) : serverUrl;
  switch (url.dialect) {
    case 'sqlite':
      return new SqliteProvider({ dataDir: opts.dataDir });
    case 'postgres':
      return new PostgresProvider(url, {
        ...(opts.log ? { log: opts.log } : {}),
        ...(opts.budget ? { budget: opts.budget } : {}),
      });
    case 'mysql':
      return new MysqlProvider(url);
  }
}

export { MysqlProvider } from './mysql.js';
export { PostgresProvider } from './postgres.js';
export type { ProviderLog } from './provider.js';
export { SqliteProvider } from './sqlite.js';
