/** Password hashing with Argon2id (@node-rs/argon2, OWASP's recommended parameters by default). */
import crypto from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

let dummy: Promise<string> | undefined;

export function hashPassword(password: string): Promise<string> {
  return hash(password);
}

/** True when `password` matches `passwordHash`; false for a wrong password or a malformed hash. */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

/**
 * A hash of a random password, to verify against when the username is unknown, so that a sign-in
 * for an unknown user costs as much as one with a wrong password.
 */
export function dummyHash(): Promise<string> {
  dummy ??= hash(crypto.randomBytes(18).toString('base64')).catch((err: unknown) => {
    dummy = undefined;
    throw err;
  });
  return dummy;
}
