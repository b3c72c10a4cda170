/** MySQL/MariaDB's named lock names (`GET_LOCK`, server-wide; the store's migrations take one). */
import crypto from 'node:crypto';

/**
 * A MySQL `GET_LOCK` name for `namespace` scoped to `database` (MySQL's named locks are
 * server-wide). Names longer than MySQL's 64-character limit are shortened with a hash.
 */
export function mysqlLockName(namespace: string, database: string | undefined): string {
  const name = `${namespace}:${database ?? ''}`;
  if (name.length <= 64) return name;
  return `${namespace}:${crypto
    .createHash('sha256')
    .update(database ?? '')
    .digest('hex')}`.slice(0, 64);
}
