/** SQLite: files (`sqlite:FILE`); the "server" of new databases is the data folder. */
import fs from 'node:fs';
import type { DialectModule } from '../types.js';
import { SqliteClient } from './client.js';
import { classifyError, translateError } from './errors.js';
import { rules } from './identifiers.js';
import { lockSession } from './lock.js';
import { SqliteProvider } from './provider.js';
import { QueryOnlySqlite } from './read-only.js';
import { store } from './store.js';
import { parseSqliteUrl, resolveSqliteUrl, sqliteServer } from './url.js';

export const sqlite: DialectModule = {
  name: 'sqlite',
  schemes: ['sqlite:'],
  urlForm: 'sqlite:FILE',
  exampleDatabase: 'main.sqlite',
  remote: false,
  schemas: false,
  budgeted: false,
  storeNeedsDatabase: false,
  parseUrl: parseSqliteUrl,
  resolveUrl: resolveSqliteUrl,
  // SQLite "new databases" are files in <dataDir>/apps: that folder is the "server".
  serverIdentity: (_url, dataDir) => sqliteServer(dataDir),
  openClient: (url) => new SqliteClient(url.filename!),
  openReadOnlyClient(url) {
    const file = url.filename!;
    if (file === ':memory:' || !fs.existsSync(file)) return undefined;
    return new QueryOnlySqlite(file);
  },
  classifyError,
  translateError,
  lockSession,
  store,
  identifiers: { rules },
  createProvider: (_url, opts) => new SqliteProvider({ dataDir: opts.dataDir }),
};
