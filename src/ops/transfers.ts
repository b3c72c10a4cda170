/** The data transfer for a dialect (one per dialect folder, like the providers). */

import type { Settings } from '../config/types.js';
import { createMysqlTransfer } from '../dialects/mysql/transfer.js';
import { createPostgresTransfer } from '../dialects/postgres/transfer.js';
import { createSqliteTransfer } from '../dialects/sqlite/transfer.js';
import type { Dialect } from '../providers/provider.js';
import type { DatabaseTarget } from '../reconcile/model.js';
import type { DataTransfer, TransferOptions } from './transfer.js';

export function transferFor(dialect: Dialect, opts: TransferOptions): DataTransfer {
  switch (dialect) {
    case 'sqlite':
      return createSqliteTransfer(opts);
    case 'postgres':
      return createPostgresTransfer(opts);
    case 'mysql':
      return createMysqlTransfer(opts);
  }
}

/** The transfer that reaches a target's server: the main database's, or its `new-connection` URL's. */
export function transferForTarget(
  settings: Pick<Settings, 'database' | 'dataDir'>,
): (target: Pick<DatabaseTarget, 'dialect' | 'serverRef'>) => DataTransfer {
  return (target) =>
    transferFor(target.dialect, {
      url: target.serverRef === 'main' ? settings.database.url : target.serverRef.url,
      dataDir: settings.dataDir,
    });
}
