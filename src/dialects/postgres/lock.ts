/** PostgreSQL's advisory lock keys (the state store's migrations take a transaction-level one). */
import crypto from 'node:crypto';

/**
 * A PostgreSQL advisory lock key for `namespace`: a signed 64-bit integer (as a decimal string,
 * for `?::bigint`) from its SHA-256, so it is the same on every server version and process.
 */
export function advisoryLockKey(namespace: string): string {
  const digest = crypto.createHash('sha256').update(namespace).digest();
  return digest.readBigInt64BE(0).toString();
}
