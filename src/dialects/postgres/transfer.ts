/** postgres's data transfer (src/ops/transfer.ts). */
import { AppvisorError } from '../../errors.js';
import type { DataTransfer, TransferOptions } from '../../ops/transfer.js';

export function createPostgresTransfer(_opts: TransferOptions): DataTransfer {
  throw new AppvisorError('UNSUPPORTED_MODE', { detail: 'backups are not implemented for postgres yet' });
}
