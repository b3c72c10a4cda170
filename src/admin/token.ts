import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppvisorError } from '../errors.js';

/** The environment variable that sets the admin token. */
export const ADMIN_TOKEN_ENV = 'APPVISOR_ADMIN_TOKEN';
/** The token file's name inside the data directory. */
export const ADMIN_TOKEN_FILE = 'admin-token';
/** Shortest token accepted, from the environment or the file. */
export const MIN_TOKEN_LENGTH = 16;

/** The little of a logger that token resolution uses (pino's Logger fits). */
export interface TokenLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ResolveAdminTokenOptions {
  /** @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Absolute data directory; holds `admin-token`. */
  readonly dataDir: string;
  readonly log: TokenLog;
}

export interface AdminToken {
  readonly token: string;
  /** `env`: APPVISOR_ADMIN_TOKEN; `file`: read from the data dir; `generated`: created now. */
  readonly source: 'env' | 'file' | 'generated';
  /** The token file, for `file` and `generated`. */
  readonly file?: string;
}

/**
 * Finds the admin token: `APPVISOR_ADMIN_TOKEN`, else `<dataDir>/admin-token`, else a new
 * random one written there with mode 0600 and logged once (the only time it is logged).
 */
export async function resolveAdminToken(options: ResolveAdminTokenOptions): Promise<AdminToken> {
  const { dataDir, log } = options;
  const env = options.env ?? process.env;
  const fromEnv = env[ADMIN_TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { token: checked(fromEnv.trim(), ADMIN_TOKEN_ENV), source: 'env' };
  }
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = await readTokenFile(file, log);
  if (existing !== undefined) return { token: existing, source: 'file', file };

  await mkdir(dataDir, { recursive: true });
  const token = randomBytes(32).toString('base64url');
  const winner = await writeNoClobber(file, token, log);
  if (winner !== token) return { token: winner, source: 'file', file };
  log.info(
    { adminToken: token, file, hint: `set ${ADMIN_TOKEN_ENV} to choose your own` },
    `admin token generated (shown once; kept in ${file}): ${token}`,
  );
  return { token, source: 'generated', file };
}

function checked(token: string, where: string): string {
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `${where}: the admin token must be at least ${MIN_TOKEN_LENGTH} characters (got ${token.length})`,
    });
  }
  return token;
}

/** Reads the token file, tightening its mode to 0600 if it is looser; undefined if absent. */
async function readTokenFile(file: string, log: TokenLog): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AppvisorError(
      'CONFIG_INVALID',
      { detail: `cannot read ${file}: ${(err as Error).message}` },
      { cause: err },
    );
  }
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    await chmod(file, 0o600);
    log.warn(
      { file, mode: mode.toString(8) },
      `${file} was readable by others (mode ${mode.toString(8)}); set it to 600`,
    );
  }
  return checked(text.trim(), file);
}

/**
 * Writes `token` to `file` atomically (temp file, then a hard link that fails if `file`
 * appeared meanwhile) and returns the token that ended up in the file: ours, or the one a
 * concurrent first start wrote before us.
 */
async function writeNoClobber(file: string, token: string, log: TokenLog): Promise<string> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, `${token}\n`, { mode: 0o600, flag: 'wx' });
  try {
    try {
      await link(temp, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return (await readTokenFile(file, log)) ?? token;
      // Filesystems without hard links: fall back to rename (atomic, may replace a racing writer's file).
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
        await rename(temp, file);
        return token;
      }
      throw err;
    }
    return token;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
