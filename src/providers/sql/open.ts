import type { SqlClient } from '../provider.js';
import { type DatabaseUrl, parseDatabaseUrl } from '../url.js';
import { MysqlClient } from './mysql.js';
import { PostgresClient } from './postgres.js';
import { SqliteClient } from './sqlite.js';

export interface OpenOptions {
  /** PostgreSQL only: search_path for every connection. */
  readonly schema?: string;
  /** Pool size for server dialects. */
  readonly max?: number;
  readonly onError?: (err: Error) => void;
}

/** Opens a SqlClient for a database URL (`sqlite:FILE`, `postgres://…`, `mysql://…`). */
export function openSqlClient(url: string | DatabaseUrl, options: OpenOptions = {}): SqlClient {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url) : url;
  switch (parsed.dialect) {
    case 'sqlite':
      return new SqliteClient(parsed.filename!);
    case 'postgres':
      return new PostgresClient({
        connectionString: parsed.url,
        ...(options.schema ? { schema: options.schema } : {}),
        ...(options.max ? { max: options.max } : {}),
        ...(options.onError ? { onError: options.onError } : {}),
      });
    case 'mysql':
      return new MysqlClient({ uri: parsed.url, ...(options.max ? { connectionLimit: options.max } : {}) });
  }
}
