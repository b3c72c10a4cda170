/** MySQL and MariaDB: servers reached as `mysql://` or `mariadb://`. */
import type { DialectModule } from '../types.js';
import { serverUrls } from '../url.js';
import { MysqlClient } from './client.js';
import { classifyError, translateError } from './errors.js';
import { quoteIdentifier, quoteLiteral, rules } from './identifiers.js';
import { MysqlProvider } from './provider.js';
import { store } from './store.js';

const openClient: DialectModule['openClient'] = (url, opts = {}) =>
  new MysqlClient({ uri: url.url, ...(opts.max ? { connectionLimit: opts.max } : {}) });

export const mysql: DialectModule = {
  name: 'mysql',
  schemes: ['mysql:', 'mariadb:'],
  urlForm: 'mysql://…',
  exampleDatabase: '/appvisor',
  ...serverUrls('mysql', 3306),
  schemas: false,
  budgeted: false,
  // A URL may leave the database out (`mysql://host/`), but the store needs one to live in.
  storeNeedsDatabase: true,
  openClient,
  openReadOnlyClient(url) {
    const client = openClient(url, { max: 2 }) as MysqlClient;
    // Queued ahead of any query on the new connection.
    client.pool.pool.on('connection', (conn) => {
      conn.query('SET SESSION TRANSACTION READ ONLY', () => undefined);
    });
    return client;
  },
  classifyError,
  translateError,
  store,
  identifiers: { rules, quoteIdentifier, quoteLiteral },
  createProvider: (url, opts) =>
    new MysqlProvider(url, opts.adminConnections ? { maxAdminConnections: opts.adminConnections } : {}),
};
