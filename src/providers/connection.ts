import type { Provider, SqlClient } from './provider.js';

/**
 * `Provider.withConnection` where the provider has no connection of its own to lend: a new
 * one-connection client of the database, closed after `work`.
 */
export async function onNewConnection<T>(
  provider: Pick<Provider, 'openDatabase'>,
  name: string,
  opts: { readonly schema?: string },
  work: (client: SqlClient) => Promise<T>,
): Promise<T> {
  const db = await provider.openDatabase(name, {
    ...(opts.schema !== undefined ? { schema: opts.schema } : {}),
    maxConnections: 1,
  });
  try {
    return await work(db.client);
  } finally {
    await db.client.close();
  }
}
