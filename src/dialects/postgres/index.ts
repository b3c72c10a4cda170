/** PostgreSQL: servers reached as `postgres://` or `postgresql://`; apps may live in schemas. */
import type { DialectModule } from '../types.js';
import { serverUrls } from '../url.js';
import { PostgresClient } from './client.js';
import { classifyError, translateError } from './errors.js';
import { quoteIdentifier, quoteLiteral, rules } from './identifiers.js';
import { listen } from './listener.js';
import { PostgresProvider } from './provider.js';
import { openReadOnlyPool } from './read-only.js';
import { store } from './store.js';

export const postgres: DialectModule = {
  name: 'postgres',
  schemes: ['postgres:', 'postgresql:'],
  urlForm: 'postgres://…',
  exampleDatabase: '/postgres',
  ...serverUrls('postgres', 5432),
  schemas: true,
  budgeted: true,
  storeNeedsDatabase: false,
  openClient: (url, opts = {}) =>
    new PostgresClient({
      connectionString: url.url,
      ...(opts.schema ? { schema: opts.schema } : {}),
      ...(opts.max ? { max: opts.max } : {}),
      ...(opts.onError ? { onError: opts.onError } : {}),
    }),
  openReadOnlyClient: (url, opts = {}) => openReadOnlyPool(url, opts),
  classifyError,
  translateError,
  listen,
  store,
  identifiers: { rules, quoteIdentifier, quoteLiteral },
  createProvider: (url, opts) =>
    new PostgresProvider(url, {
      ...(opts.log ? { log: opts.log } : {}),
      ...(opts.budget ? { budget: opts.budget } : {}),
      ...(opts.schemaPoolSize !== undefined ? { schemaPoolSize: opts.schemaPoolSize } : {}),
      ...(opts.adminConnections ? { maxAdminConnections: opts.adminConnections } : {}),
    }),
};
