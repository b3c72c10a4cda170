/**
 * The envelope every secret is stored in at rest (SPEC §8.5): AES-256-GCM under the master key,
 * with a fresh 96-bit nonce per seal. The text form is
 * `av1:<key id>:<nonce b64url>:<ciphertext b64url>:<tag b64url>`: the key id (the first 8 hex
 * characters of the key's SHA-256) says which key sealed it, so `rekey` and a wrong key are told
 * apart from a damaged value. `aad` binds a value to where it belongs (the app's name), so a
 * sealed secret copied onto another app's row does not open there.
 */
import crypto from 'node:crypto';
import { AppvisorError } from '../errors.js';

const PREFIX = 'av1';
const NONCE_BYTES = 12;
export const MASTER_KEY_BYTES = 32;

/** A master key and its id (never the key itself in any message). */
export interface MasterKey {
  readonly key: Buffer;
  /** 8 hex characters of SHA-256(key): which key sealed a value. */
  readonly id: string;
  /** Where it came from, for messages: `APPVISOR_MASTER_KEY` or the file's path. */
  readonly source: string;
}

export function masterKeyOf(key: Buffer, source: string): MasterKey {
  if (key.length !== MASTER_KEY_BYTES) {
    throw new AppvisorError('MASTER_KEY_INVALID', {
      source,
      detail: `it must be base64 of ${MASTER_KEY_BYTES} bytes, got ${key.length} bytes`,
    });
  }
  return { key, id: crypto.createHash('sha256').update(key).digest('hex').slice(0, 8), source };
}

/** Whether a stored value is sealed (else it is a plaintext secret from before encryption). */
export function isSealed(value: string): boolean {
  return value.startsWith(`${PREFIX}:`);
}

/** The id of the key that sealed `value`, or undefined for a plaintext value. */
export function sealedWith(value: string): string | undefined {
  return isSealed(value) ? value.split(':')[1] : undefined;
}

export function seal(plaintext: string, master: MasterKey, aad: string): string {
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', master.key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [
    PREFIX,
    master.id,
    nonce.toString('base64url'),
    body.toString('base64url'),
    tag.toString('base64url'),
  ].join(':');
}

/**
 * Opens a sealed value.
 * @throws AppvisorError MASTER_KEY_INVALID when another key sealed it, or it was altered
 */
export function open(sealed: string, master: MasterKey, aad: string): string {
  const parts = sealed.split(':');
  if (parts.length !== 5 || parts[0] !== PREFIX) {
    throw new AppvisorError('MASTER_KEY_INVALID', {
      source: master.source,
      detail: 'a stored value is not a sealed secret',
    });
  }
  const [, keyId, nonce, body, tag] = parts as [string, string, string, string, string];
  if (keyId !== master.id) {
    throw new AppvisorError('MASTER_KEY_INVALID', {
      source: master.source,
      detail: `a secret of ${aad} was sealed with key ${keyId}, and this key is ${master.id}; set the master key the store was written with (or run \`appvisor rekey\` with both)`,
    });
  }
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', master.key, Buffer.from(nonce, 'base64url'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  } catch {
    throw new AppvisorError('MASTER_KEY_INVALID', {
      source: master.source,
      detail: `the sealed secret of ${aad} does not open with key ${master.id}: it was altered or damaged`,
    });
  }
}
