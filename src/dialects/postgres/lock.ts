/** PostgreSQL's lock primitives: session-level and transaction-level advisory locks. */
import crypto from 'node:crypto';
import pg from 'pg';
import { connectionSession, DeathWatch } from '../lock-session.js';
import type { LockSession } from '../types.js';
import type { DatabaseUrl } from '../url.js';

/**
 * A PostgreSQL advisory lock key for `namespace`: a signed 64-bit integer (as a decimal string,
 * for `?::bigint`) from its SHA-256, so it is the same on every server version and process.
 */
export function advisoryLockKey(namespace: string): string {
  const digest = crypto.createHash('sha256').update(namespace).digest();
  return digest.readBigInt64BE(0).toString();
}

/** A session-level advisory lock on a dedicated connection: the server drops it with the connection. */
export async function lockSession(url: DatabaseUrl, namespace: string): Promise<LockSession> {
  const client = new pg.Client({
    connectionString: url.url,
    keepAlive: true,
    connectionTimeoutMillis: 5000,
    application_name: 'appvisor reconcile lock',
  });
  const death = new DeathWatch();
  // Unhandled, an 'error' on an idle client would crash the process.
  client.on('error', death.fire);
  client.on('end', () => death.fire(new Error('connection closed')));
  await client.connect();
  const key = advisoryLockKey(namespace);
  const conn = {
    query: (sql: string) => client.query(sql),
    end: () => client.end(),
    destroy: () => void client.end().catch(() => undefined),
  };
  return connectionSession(conn, death, {
    async tryLock() {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
        key,
      ]);
      return rows[0]?.ok === true;
    },
    async unlock() {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
    },
  });
}
