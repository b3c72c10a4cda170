/** MySQL/MariaDB's lock primitive: named locks (`GET_LOCK`), which are server-wide. */
import crypto from 'node:crypto';
import mysql from 'mysql2/promise';
import { connectionSession, DeathWatch } from '../lock-session.js';
import type { LockSession } from '../types.js';
import type { DatabaseUrl } from '../url.js';

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

/** A named lock on a dedicated connection: the server drops it with the connection. */
export async function lockSession(url: DatabaseUrl, namespace: string): Promise<LockSession> {
  const conn = await mysql.createConnection({ uri: url.url, connectTimeout: 5000, enableKeepAlive: true });
  const death = new DeathWatch();
  conn.on('error', death.fire);
  conn.on('end', () => death.fire(new Error('connection closed')));
  const name = mysqlLockName(namespace, url.database);
  return connectionSession(conn, death, {
    async tryLock() {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS ok', [name]);
      const ok = rows[0]?.ok as number | null | undefined;
      if (ok === null || ok === undefined) throw new Error(`GET_LOCK('${name}') failed`);
      return Number(ok) === 1;
    },
    async unlock() {
      await conn.query('SELECT RELEASE_LOCK(?)', [name]);
    },
  });
}
