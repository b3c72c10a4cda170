import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { messageOf } from '../errors.js';
import { LAST_USED_RESOLUTION_MS, tokenHash } from '../state/tokens.js';
import type { StateStore, TokenScope } from '../state/types.js';
import { sendCode } from './respond.js';
import { ADMIN_TOKEN_ENV, type TokenLog } from './token.js';

/** Whose token a request carries: a stored token's name, or `APPVISOR_ADMIN_TOKEN`. */
export interface AdminCaller {
  readonly name: string;
  readonly scope: TokenScope;
}

/**
 * A check of a request's `Authorization: Bearer <token>` header: the caller, or undefined when
 * the token is missing or not accepted.
 */
export interface BearerCheck {
  (req: IncomingMessage): Promise<AdminCaller | undefined>;
  /**
   * Reads the stored tokens now (a token made or revoked through this replica's API counts at
   * once here; other replicas see it within their refresh).
   */
  refresh(): Promise<void>;
  /** Stops the refresh timer. */
  close(): void;
}

/** What the check reads of the state store. */
export type StoredTokens = Pick<StateStore, 'listAdminTokens' | 'findAdminToken'>;

export interface BearerCheckOptions {
  /** A token accepted besides the stored ones: `APPVISOR_ADMIN_TOKEN`, this replica's own. */
  readonly token?: string;
  /** The store's tokens, accepted on every replica. */
  readonly store?: StoredTokens;
  /** How often the stored hashes are read again. @default 3000 */
  readonly refreshMs?: number;
  /** A token not known yet reads them again, at most this often. @default 1000 */
  readonly missRefreshMs?: number;
  /** @default no logging */
  readonly log?: TokenLog;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
const DEFAULT_REFRESH_MS = 3_000;
const DEFAULT_MISS_REFRESH_MS = 1_000;

interface Known {
  readonly digest: Buffer;
  readonly caller: AdminCaller;
  /** The stored hash (hex), to note the token's use; absent for the environment's token. */
  readonly hash?: string;
}

function digest(value: string): Buffer {
  return Buffer.from(tokenHash(value), 'hex');
}

/**
 * The first entry whose digest equals `presented`, comparing with every entry whatever matched
 * (and in constant time each), so the time taken says nothing about the token.
 */
function match(presented: Buffer, known: readonly Known[]): Known | undefined {
  let found: Known | undefined;
  for (const entry of known) {
    const equal = timingSafeEqual(presented, entry.digest);
    if (equal && found === undefined) found = entry;
  }
  return found;
}

function fromStore(rows: Awaited<ReturnType<StoredTokens['listAdminTokens']>>): Known[] {
  // A revoked token opens nothing; a hash that is not 64 hex characters matches no token (and
  // timingSafeEqual needs equal lengths).
  return rows
    .filter((row) => row.revokedAt === undefined && /^[0-9a-f]{64}$/.test(row.hash))
    .map((row) => ({
      digest: Buffer.from(row.hash, 'hex'),
      caller: { name: row.name, scope: row.scope },
      hash: row.hash,
    }));
}

/**
 * Builds the admin token check: the environment's token, or any token whose hash is in the
 * state store. Every comparison is between SHA-256 digests, so it is constant-time whatever the
 * presented token's length is.
 *
 * The stored hashes are cached and read again every `refreshMs`, and on an unknown token at most
 * every `missRefreshMs`: a token added on another replica is accepted here within seconds, and a
 * revoked or deleted one stops working as fast (within `refreshMs`). A store that cannot be read keeps the last hashes read (an
 * outage of the main database must not lock the operator out), said once in the log.
 */
export function createBearerCheck(options: BearerCheckOptions): BearerCheck {
  const { store, log } = options;
  const refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
  const missRefreshMs = options.missRefreshMs ?? DEFAULT_MISS_REFRESH_MS;
  const own: Known[] =
    options.token === undefined
      ? []
      : [{ digest: digest(options.token), caller: { name: ADMIN_TOKEN_ENV, scope: 'admin' } }];
  let stored: readonly Known[] = [];
  let loading: Promise<void> | undefined;
  let loadedAt = Number.NEGATIVE_INFINITY;
  let failing = false;
  const noted = new Map<string, number>();

  const load = async (): Promise<void> => {
    loadedAt = Date.now();
    try {
      stored = fromStore(await store!.listAdminTokens());
      if (failing) log?.info({}, 'admin tokens read from the state store again');
      failing = false;
    } catch (err) {
      if (!failing) {
        log?.warn(
          { err: messageOf(err), tokens: stored.length },
          'cannot read the admin tokens from the state store; accepting the ones read last until it answers',
        );
      }
      failing = true;
    }
  };
  // One read at a time; callers arriving meanwhile wait for it.
  const refresh = (): Promise<void> => {
    loading ??= load().finally(() => {
      loading = undefined;
    });
    return loading;
  };

  // Notes a stored token's use, at most once a minute per token here (the store also writes it
  // at most once a minute); a request never waits for it, nor fails with it.
  const noteUse = (hash: string): void => {
    const now = Date.now();
    if (now - (noted.get(hash) ?? Number.NEGATIVE_INFINITY) < LAST_USED_RESOLUTION_MS) return;
    noted.set(hash, now);
    store!.findAdminToken(hash).catch(() => undefined);
  };

  let timer: NodeJS.Timeout | undefined;
  if (store) {
    void refresh();
    timer = setInterval(() => void refresh(), refreshMs);
    timer.unref();
  }

  const check = (async (req) => {
    const header = req.headers.authorization;
    if (header === undefined) return undefined;
    const bearer = BEARER.exec(header);
    if (bearer === null) return undefined;
    const presented = digest(bearer[1]!);
    let found = match(presented, [...own, ...stored]);
    if (found === undefined && store) {
      if (loading) await loading;
      else if (Date.now() - loadedAt >= missRefreshMs) await refresh();
      else return undefined;
      found = match(presented, [...own, ...stored]);
    }
    if (found?.hash !== undefined) noteUse(found.hash);
    return found?.caller;
  }) as BearerCheck;
  check.refresh = () => (store ? refresh() : Promise.resolve());
  check.close = () => clearInterval(timer);
  return check;
}

/** The one 401 answer: same body whatever the route, the app, or what was wrong. */
export function sendUnauthorized(res: ServerResponse): void {
  sendCode(res, 'UNAUTHORIZED', {}, { 'www-authenticate': 'Bearer' });
}
