import crypto from 'node:crypto';

/** Bytes of randomness in a generated secret (384 bits: ample for HS256/HS384/HS512 JWT keys). */
export const SECRET_BYTES = 48;

/**
 * A new random secret: 48 random bytes, base64url (64 characters, no padding). Persist it with
 * `StateStore.ensureSecret` before first use and use the value that call returns, so two racing
 * processes end up with the same secret.
 */
export function generateSecret(): string {
  return crypto.randomBytes(SECRET_BYTES).toString('base64url');
}
