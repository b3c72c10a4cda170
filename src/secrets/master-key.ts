/**
 * Where the master key comes from (SPEC §8.5): `APPVISOR_MASTER_KEY` (base64 of 32 bytes), else
 * `<dataDir>/master-key` (mode 0600), generated there on first start when `create` is set. The
 * key itself is never logged, printed or written into a backup; messages name its id.
 */
import crypto from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppvisorError } from '../errors.js';
import { MASTER_KEY_BYTES, type MasterKey, masterKeyOf } from './envelope.js';

export const MASTER_KEY_ENV = 'APPVISOR_MASTER_KEY';
export const MASTER_KEY_FILE = 'master-key';

/** Parses a key given as base64 (standard or url-safe), as in the variable and the file. */
export function parseMasterKey(text: string, source: string): MasterKey {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new AppvisorError('MASTER_KEY_INVALID', {
      source,
      detail: `it must be base64 of ${MASTER_KEY_BYTES} bytes`,
    });
  }
  return masterKeyOf(
    Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64'),
    source,
  );
}

/** A new random key as the file and the variable hold it (base64). */
export function generateMasterKeyText(): string {
  return crypto.randomBytes(MASTER_KEY_BYTES).toString('base64');
}

export interface MasterKeyOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Absolute data directory; holds `master-key`. */
  readonly dataDir: string;
  /** Generate `<dataDir>/master-key` when neither it nor the variable exists (serve, apply). */
  readonly create: boolean;
}

/**
 * The master key, or undefined when there is none and `create` is false (a reader: `plan`).
 * @throws AppvisorError MASTER_KEY_INVALID for a malformed key
 */
export async function loadMasterKey(opts: MasterKeyOptions): Promise<MasterKey | undefined> {
  const fromEnv = (opts.env ?? process.env)[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return parseMasterKey(fromEnv, MASTER_KEY_ENV);
  const file = join(opts.dataDir, MASTER_KEY_FILE);
  try {
    return parseMasterKey(await readFile(file, 'utf8'), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!opts.create) return undefined;
  await mkdir(opts.dataDir, { recursive: true });
  // Written whole under a name of its own, then linked into place: of two processes starting at
  // once, one links its key and the other reads that one — never a file still being written
  // (a `wx` open creates the file empty first, and the other process read it so).
  const draft = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  await writeFile(draft, `${generateMasterKeyText()}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(draft, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(draft).catch(() => undefined);
  }
  await chmod(file, 0o600);
  return parseMasterKey(await readFile(file, 'utf8'), file);
}
