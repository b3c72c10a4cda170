/** The data transfer for a dialect (one per dialect folder, like the providers). */
import { createMysqlTransfer } from '../dialects/mysql/transfer.js';
import { createPostgresTransfer } from '../dialects/postgres/transfer.js';
import { createSqliteTransfer } from '../dialects/sqlite/transfer.js';
import type { Dialect } from '../providers/provider.js';
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
