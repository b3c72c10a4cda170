import { dialectFor, parseDatabaseUrl } from '../../dialects/registry.js';
import type { OpenOptions } from '../../dialects/types.js';
import type { DatabaseUrl } from '../../dialects/url.js';
import type { SqlClient } from '../provider.js';

export type { OpenOptions } from '../../dialects/types.js';

/** Opens a SqlClient for a database URL (`sqlite:FILE`, `postgres://…`, `mysql://…`). */
export function openSqlClient(url: string | DatabaseUrl, options: OpenOptions = {}): SqlClient {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url) : url;
  return dialectFor(parsed).openClient(parsed, options);
}
