import path from 'node:path';
import { AppvisorError } from '../errors.js';
import { type DatabaseUrl, parseDatabaseUrl } from '../providers/url.js';
import type { PlanOptions } from '../reconcile/model.js';

/**
 * The main database as the planner sees it: its dialect, a server description without
 * password (used in inventory records, so it must stay stable across runs), and its database.
 */
export function describeMainDatabase(url: string | DatabaseUrl, dataDir: string): PlanOptions['main'] {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url) : url;
  switch (parsed.dialect) {
    case 'sqlite':
      // SQLite "new databases" are files in <dataDir>/apps: that folder is the "server".
      return { dialect: 'sqlite', server: `sqlite:${path.resolve(dataDir)}`, database: parsed.filename! };
    case 'postgres':
    case 'mysql': {
      if (!parsed.database) {
        throw new AppvisorError('CONFIG_INVALID', {
          detail: `the main database URL ${parsed.redacted} names no database; add one, e.g. ${parsed.dialect === 'postgres' ? '/postgres' : '/appvisor'}`,
        });
      }
      const user = parsed.user ? `${parsed.user}@` : '';
      return {
        dialect: parsed.dialect,
        server: `${parsed.dialect}://${user}${parsed.host}:${parsed.port}`,
        database: parsed.database,
      };
    }
  }
}
