import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppvisorError } from '../errors.js';
import { tokenHash } from '../state/tokens.js';
import {
  type AdminTokenRecord,
  DEFAULT_TOKEN,
  type StateStore,
  TOKEN_SCOPES,
  type TokenScope,
} from '../state/types.js';

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
  /** The state store, where the tokens every replica accepts are kept (hashed). */
  readonly store: Pick<StateStore, 'ensureAdminToken' | 'listAdminTokens'>;
  readonly log: TokenLog;
}

export interface AdminToken {
  /**
   * The token as this replica knows it; undefined when another replica made the stored one (it
   * is in that replica's `admin-token` file) or this replica's file is stale.
   */
  readonly token: string | undefined;
  /**
   * `env`: APPVISOR_ADMIN_TOKEN (accepted here besides the stored tokens); `file`: read from the
   * data dir, the stored default; `generated`: created and stored now; `store`: the stored
   * default, whose plaintext this replica does not hold; `revoked`: the default was revoked, so
   * only the other stored tokens are accepted (and none is made or imported).
   */
  readonly source: 'env' | 'file' | 'generated' | 'store' | 'revoked';
  /** The token file, for `file` and `generated`. */
  readonly file?: string;
}

/**
 * Finds the admin token at `serve` start. `APPVISOR_ADMIN_TOKEN` wins, as before replicas, and
 * touches neither the store nor the file. Otherwise the stored `default` token is the one: its
 * hash lives in the state store, so every replica on the store accepts it.
 *
 * - A token file and no stored default (a data dir from before tokens were stored): the file's
 *   token is imported, so upgrading one replica keeps its token working on all of them.
 * - Neither: a new random token is stored, insert-if-absent; only the replica whose insert won
 *   writes it to `<dataDir>/admin-token` (mode 0600) and logs it, once. The others use the
 *   winner's, never their own.
 * - A stored default made elsewhere: accepted, and the log says where its plaintext is.
 * - A token file whose token is not the stored default: the store wins; the file is left as it
 *   is (never silently replaced) and the log says it is stale.
 * - A revoked default (`appvisor token revoke default`): it stays revoked. Neither a token file
 *   (this replica's, or one copied from a backup) brings it back nor is a new one generated; the
 *   log says how to make another.
 */
export async function resolveAdminToken(options: ResolveAdminTokenOptions): Promise<AdminToken> {
  const { dataDir, store, log } = options;
  const env = options.env ?? process.env;
  const fromEnv = env[ADMIN_TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { token: checked(fromEnv.trim(), ADMIN_TOKEN_ENV), source: 'env' };
  }
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = await readTokenFile(file, log);
  if (existing !== undefined) {
    const candidate = defaultToken(existing);
    const stored = await store.ensureAdminToken(candidate);
    if (stored.revokedAt !== undefined) return revokedDefault(stored, log, file);
    if (stored.hash === candidate.hash) {
      if (stored.createdAt === candidate.createdAt) {
        log.info(
          { file, token: DEFAULT_TOKEN },
          `the admin token of ${file} is now stored for every replica`,
        );
      }
      return { token: existing, source: 'file', file };
    }
    log.warn(
      { file, token: DEFAULT_TOKEN, createdAt: stored.createdAt },
      `${file} is stale: it does not hold the stored admin token '${DEFAULT_TOKEN}' (created ${stored.createdAt}), which this replica accepts instead; the file is left as it is`,
    );
    return { token: undefined, source: 'store' };
  }

  const present = (await store.listAdminTokens()).find((t) => t.name === DEFAULT_TOKEN);
  if (present?.revokedAt !== undefined) return revokedDefault(present, log, undefined);
  if (present) return madeElsewhere(present, log);
  const token = newTokenText();
  const candidate = defaultToken(token);
  const stored = await store.ensureAdminToken(candidate);
  if (stored.revokedAt !== undefined) return revokedDefault(stored, log, undefined);
  // Another replica's insert won the race: its token is the one, ours is forgotten unused.
  if (stored.hash !== candidate.hash) return madeElsewhere(stored, log);

  await mkdir(dataDir, { recursive: true });
  const written = await writeNoClobber(file, token, log);
  if (written !== token) {
    // Another process on this data dir wrote the file meanwhile (not through this store).
    log.warn(
      { file, token: DEFAULT_TOKEN },
      `${file} appeared while the admin token was being made and holds another token; this replica accepts the stored one, shown here once: ${token}`,
    );
    return { token, source: 'generated' };
  }
  log.info(
    { adminToken: token, file, hint: `set ${ADMIN_TOKEN_ENV} to choose your own` },
    `admin token generated (shown once; kept in ${file}): ${token}`,
  );
  return { token, source: 'generated', file };
}

function defaultToken(token: string): AdminTokenRecord {
  return { name: DEFAULT_TOKEN, hash: tokenHash(token), scope: 'admin', createdAt: new Date().toISOString() };
}

function revokedDefault(stored: AdminTokenRecord, log: TokenLog, file: string | undefined): AdminToken {
  log.warn(
    { token: stored.name, revokedAt: stored.revokedAt, ...(file ? { file } : {}) },
    `the admin token '${stored.name}' was revoked at ${stored.revokedAt}${file ? `; ${file} is no longer accepted (delete it)` : ''}; the other stored tokens are accepted: make one with \`appvisor token create NAME --scope admin\``,
  );
  return { token: undefined, source: 'revoked' };
}

function madeElsewhere(stored: AdminTokenRecord, log: TokenLog): AdminToken {
  log.info(
    { token: stored.name, createdAt: stored.createdAt },
    `the admin token '${stored.name}' was made by another replica (created ${stored.createdAt}) and is accepted here: it is in that replica's data/${ADMIN_TOKEN_FILE} (or the operator's ${ADMIN_TOKEN_ENV} there); set ${ADMIN_TOKEN_ENV} to use your own`,
  );
  return { token: undefined, source: 'store' };
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

/** A new token: 256 random bits, base64url (43 characters). */
function newTokenText(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * What a token's name may be: lower-case letters, digits, `.`, `_` and `-`, starting and ending
 * with a letter or digit, up to 40 characters. It is shown in the history, the log and the
 * APP_STOPPED answer (`token <name> via …`), and lower case keeps it apart from the
 * environment's `APPVISOR_ADMIN_TOKEN`.
 */
export const TOKEN_NAME = /^[a-z0-9](?:[a-z0-9._-]{0,38}[a-z0-9])?$/;

/** `name`, if it is a token name {@link TOKEN_NAME} allows; TOKEN_INVALID says why not. */
export function checkTokenName(name: unknown): string {
  if (typeof name !== 'string' || !TOKEN_NAME.test(name)) {
    const shown = typeof name === 'string' ? `'${name}'` : `a ${name === null ? 'null' : typeof name}`;
    throw new AppvisorError('TOKEN_INVALID', {
      detail: `admin token name ${shown} is not allowed: use 1 to 40 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit (e.g. ci-deploy)`,
    });
  }
  return name;
}

/** `scope`, if it is one of {@link TOKEN_SCOPES}; TOKEN_INVALID names them otherwise. */
export function checkTokenScope(scope: unknown): TokenScope {
  if (typeof scope !== 'string' || !(TOKEN_SCOPES as readonly string[]).includes(scope)) {
    throw new AppvisorError('TOKEN_INVALID', {
      detail: `admin token scope ${typeof scope === 'string' ? `'${scope}'` : 'missing'} is not one of ${TOKEN_SCOPES.join(', ')} (read sees; operate also starts, stops and backs up apps; admin also restores, rotates secrets and manages tokens)`,
    });
  }
  return scope as TokenScope;
}

/** A token as `token list` and the API show it: everything but its hash. */
export interface TokenView {
  readonly name: string;
  readonly scope: TokenScope;
  readonly createdAt: string;
  readonly lastUsedAt?: string;
  readonly revokedAt?: string;
}

export function tokenView(record: AdminTokenRecord): TokenView {
  return {
    name: record.name,
    scope: record.scope,
    createdAt: record.createdAt,
    ...(record.lastUsedAt !== undefined ? { lastUsedAt: record.lastUsedAt } : {}),
    ...(record.revokedAt !== undefined ? { revokedAt: record.revokedAt } : {}),
  };
}

/** What managing named tokens needs of the state store. */
export type TokenStore = Pick<StateStore, 'ensureAdminToken' | 'listAdminTokens' | 'revokeAdminToken'>;

/** A token just made: its one showing, and how it is stored. */
export interface CreatedToken {
  /** The token itself; the store keeps only its hash, so this is the only time it is seen. */
  readonly token: string;
  readonly view: TokenView;
}

/**
 * Makes a named token with `scope` (`token create`, `POST /_supervisor/api/tokens`). A name in
 * use is refused (TOKEN_EXISTS), and so is a revoked token's name: a name means one token for
 * good, so an old history entry's `token ci` never points at a newer token. The insert decides
 * between two creates of one name at once, on any replicas.
 */
export async function createNamedToken(
  store: TokenStore,
  name: string,
  scope: TokenScope,
): Promise<CreatedToken> {
  checkTokenName(name);
  checkTokenScope(scope);
  const token = newTokenText();
  const candidate: AdminTokenRecord = {
    name,
    hash: tokenHash(token),
    scope,
    createdAt: new Date().toISOString(),
  };
  const stored = await store.ensureAdminToken(candidate);
  if (stored.hash === candidate.hash) return { token, view: tokenView(stored) };
  if (stored.revokedAt !== undefined) {
    throw new AppvisorError('TOKEN_EXISTS', {
      token: name,
      detail: `it was revoked at ${stored.revokedAt}, and a revoked token's name is not reused (the history's 'token ${name}' keeps meaning that token); pick another name`,
    });
  }
  throw new AppvisorError('TOKEN_EXISTS', {
    token: name,
    detail: `a token of that name exists (scope ${stored.scope}, created ${stored.createdAt}); pick another name, or revoke it first (appvisor token revoke ${name}) and make one under a new name`,
  });
}

/** Every token, revoked ones too, without hashes. */
export async function listNamedTokens(store: Pick<TokenStore, 'listAdminTokens'>): Promise<TokenView[]> {
  return (await store.listAdminTokens()).map(tokenView);
}

/**
 * Revokes the token `name` (kept as a tombstone; see {@link createNamedToken}): every replica
 * refuses it within its bearer check's refresh (3 s). `already` says it was revoked before
 * (nothing changed). TOKEN_NOT_FOUND when no token has that name.
 */
export async function revokeNamedToken(
  store: Pick<TokenStore, 'revokeAdminToken' | 'listAdminTokens'>,
  name: string,
): Promise<{ readonly view: TokenView; readonly already: boolean }> {
  const before = (await store.listAdminTokens()).find((t) => t.name === name);
  if (before === undefined) throw new AppvisorError('TOKEN_NOT_FOUND', { token: name });
  const after = await store.revokeAdminToken(name);
  if (after === undefined) throw new AppvisorError('TOKEN_NOT_FOUND', { token: name });
  return { view: tokenView(after), already: before.revokedAt !== undefined };
}
