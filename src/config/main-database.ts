import { dialectNamed, parseDatabaseUrl } from '../dialects/registry.js';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import type { PlanOptions } from '../reconcile/model.js';

/**
 * The main database as the planner sees it: its dialect, a server description without
 * password (used in inventory records, so it must stay stable across runs), and its database.
 */
export function describeMainDatabase(url: string | DatabaseUrl, dataDir: string): PlanOptions['main'] {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url) : url;
  const dialect = dialectNamed(parsed.dialect);
  // A file-based main database is its file; a server's names a database in its path.
  const database = dialect.remote ? parsed.database : parsed.filename;
  if (!database) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `the main database URL ${parsed.redacted} names no database; add one, e.g. ${dialect.exampleDatabase}`,
    });
  }
  return { dialect: parsed.dialect, server: dialect.serverIdentity(parsed, dataDir), database };
}
