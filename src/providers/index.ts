/**
 * The provider for a database server: SQLite files in the data folder, a PostgreSQL server or
 * a MySQL/MariaDB server, chosen by the URL's scheme (each dialect's own, src/dialects/*).
 */
import { dialectFor, parseDatabaseUrl } from '../dialects/registry.js';
import type { ProviderOptions } from '../dialects/types.js';
import type { DatabaseUrl } from '../dialects/url.js';
import type { Provider } from './provider.js';

/**
 * Creates the provider for `serverUrl`: the main database URL or a `new-connection` URL.
 * For PostgreSQL, `new-schema` schemas live in the database the URL names.
 */
export function createProvider(serverUrl: string | DatabaseUrl, opts: ProviderOptions): Provider {
  const url = typeof serverUrl === 'string' ? parseDatabaseUrl(serverUrl) : serverUrl;
  return dialectFor(url).createProvider(url, opts);
}
