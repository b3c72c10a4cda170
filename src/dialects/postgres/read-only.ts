import pg from 'pg';
import type { ReadOnlyOptions } from '../types.js';
import type { DatabaseUrl } from '../url.js';
import { PostgresClient } from './client.js';

/** A small pool whose server refuses writes from the very first statement (startup parameters). */
export function openReadOnlyPool(url: DatabaseUrl, opts: ReadOnlyOptions): PostgresClient {
  const searchPath = opts.searchPath?.length ? ` -c search_path=${opts.searchPath.join(',')}` : '';
  const pool = new pg.Pool({
    connectionString: url.url,
    max: 2,
    connectionTimeoutMillis: 5_000,
    allowExitOnIdle: true,
    options: `-c default_transaction_read_only=on${searchPath}`,
  });
  // Always listened to: an idle connection the server ends (a restart, pg_terminate_backend)
  // would otherwise be an unhandled 'error' that ends the process; the next query reports it.
  pool.on('error', opts.onError ?? (() => undefined));
  return new PostgresClient({ pool, target: pool });
}
