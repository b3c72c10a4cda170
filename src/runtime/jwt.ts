/**
 * JWT helpers handed to every app (SPEC §7). HS256 only, pinned on both sign and verify.
 *
 * Every token carries `aud` = the issuing app's name (`main` for the main app). Which tokens an
 * app accepts:
 * - `own` secret: only tokens signed with its own secret AND `aud` = its name;
 * - `shared` secret: tokens signed with the main secret whose `aud` is its name or `main`, never
 *   another sub-app's, although that one signs with the same secret;
 * - the main app: the main secret, `aud` = `main` only.
 *
 * Secret rotation (SPEC §8.4): every token carries the `kid` of the secret that signed it in its
 * header. The current secret signs; during a rotation's grace the previous one still verifies
 * (its own tokens, by kid), and after the grace it is gone. A token without a `kid` (issued
 * before key ids existed) is tried against the current secret, then the previous one during the
 * grace. The secrets are read through a function each time, so a running app picks a rotation up
 * without a restart (see {@link JwtKeyRing}).
 */
import crypto from 'node:crypto';
import jwt from 'jsonwebtoken';
import { AppvisorError } from '../errors.js';
import type { SecretMode } from '../manifests/types.js';
import type { SecretKey, SecretSet } from '../state/types.js';

/** The audience of the main app's tokens; no sub-app may be named like it. */
export const MAIN_AUDIENCE = 'main';

const ALGORITHM = 'HS256' as const;

/** Claims the helpers set themselves; a payload passed to `sign()` cannot override them. */
const RESERVED_CLAIMS = new Set(['aud', 'exp', 'iat', 'nbf']);

/**
 * The key id of a secret: 8 hex characters of SHA-256 over a label and the secret. Derived, so a
 * secret stored before key ids existed has the same id everywhere; it tells keys apart and says
 * nothing usable about the secret (32 bits of a hash of 384 random bits).
 */
export function kidOf(secret: string): string {
  return crypto.createHash('sha256').update('appvisor-jwt-kid\0').update(secret).digest('hex').slice(0, 8);
}

/** A secret on its own, as a set with no previous secret. */
export function secretSetOf(secret: string): SecretSet {
  return { current: { kid: kidOf(secret), secret } };
}

/** The secrets of one app, replaced when it is rotated (the helpers read it on every call). */
export class JwtKeyRing {
  #keys: SecretSet;

  constructor(keys: SecretSet) {
    this.#keys = keys;
  }

  get keys(): SecretSet {
    return this.#keys;
  }

  set(keys: SecretSet): void {
    this.#keys = keys;
  }
}

/** A secret as the helpers take it: a plain secret, a set, or a ring that rotations replace. */
export type JwtSecretInput = string | SecretSet | JwtKeyRing;

export interface JwtHelpersOptions {
  /** The app's name; its tokens' audience. Ignored for the main app, whose audience is `main`. */
  readonly app: string;
  /** The app's own secret (used in `own` mode). */
  readonly ownSecret: JwtSecretInput;
  readonly mode: SecretMode;
  /** The main app's secret (used by the main app and in `shared` mode). */
  readonly mainSecret: JwtSecretInput;
  readonly isMain: boolean;
  /** Lifetime of signed tokens, in seconds or an `ms` string such as `'1h'`. @default '1h' */
  readonly expiresIn?: jwt.SignOptions['expiresIn'];
  /** The clock a previous secret's grace is judged by (tests). @default Date.now */
  readonly now?: () => number;
}

/** What `sign()` takes: a subject plus any custom claims. */
export interface JwtPayloadInput {
  readonly sub: string;
  readonly [claim: string]: unknown;
}

/** A verified token's claims. */
export interface JwtClaims {
  readonly sub: string;
  readonly aud: string;
  readonly iat: number;
  readonly exp: number;
  readonly [claim: string]: unknown;
}

/** JWT helpers bound to one app's secret and audience. The secret itself is never exposed. */
export interface JwtHelpers {
  /** The `aud` this app puts in its tokens. */
  readonly audience: string;
  /** The audiences this app accepts. */
  readonly accepts: readonly string[];
  /** Signs a token for `payload.sub` with `aud` = this app's audience. */
  sign(payload: JwtPayloadInput): string;
  /** Returns the claims of a token this app accepts; throws {@link InvalidTokenError} otherwise. */
  verify(token: string): JwtClaims;
}

/** A token that this app does not accept. `reason` is for logs; never tell the client which. */
export class InvalidTokenError extends Error {
  readonly reason: 'expired' | 'invalid';

  constructor(reason: 'expired' | 'invalid', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidTokenError';
    this.reason = reason;
  }
}

/** Creates the JWT helpers of one app (or of the main app, with `isMain`). */
export function createJwtHelpers(options: JwtHelpersOptions): JwtHelpers {
  if (!options.isMain && options.app === MAIN_AUDIENCE) {
    throw new AppvisorError('INVALID_IDENTIFIER', {
      kind: 'app',
      name: options.app,
      reason: `"${MAIN_AUDIENCE}" is the main app's token audience`,
    });
  }
  const audience = options.isMain ? MAIN_AUDIENCE : options.app;
  const useMainSecret = options.isMain || options.mode === 'shared';
  const keysOf = ringOf(useMainSecret ? options.mainSecret : options.ownSecret, audience);
  const now = options.now ?? Date.now;
  const accepts: readonly string[] = Object.freeze(
    options.isMain || options.mode === 'own' ? [audience] : [audience, MAIN_AUDIENCE],
  );
  const expiresIn = options.expiresIn ?? '1h';

  return Object.freeze({
    audience,
    accepts,
    sign(payload: JwtPayloadInput): string {
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
        throw new TypeError('a token needs a non-empty string sub');
      }
      const claims: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(payload)) {
        if (!RESERVED_CLAIMS.has(key)) claims[key] = value;
      }
      claims.aud = audience;
      const { current } = keysOf();
      return jwt.sign(claims, current.secret, { algorithm: ALGORITHM, expiresIn, keyid: current.kid });
    },
    verify(token: string): JwtClaims {
      const decoded = verifyWithAny(token, candidates(token, keysOf(), now()));
      // Checked by hand rather than with jsonwebtoken's `audience` option, which accepts an array
      // `aud` when any element matches: a token must name exactly one audience, and one we accept.
      if (typeof decoded !== 'object' || decoded === null) {
        throw new InvalidTokenError('invalid', 'token payload is not an object');
      }
      if (typeof decoded.aud !== 'string' || !accepts.includes(decoded.aud)) {
        throw new InvalidTokenError('invalid', 'token audience not accepted');
      }
      if (typeof decoded.sub !== 'string' || decoded.sub.length === 0) {
        throw new InvalidTokenError('invalid', 'token has no subject');
      }
      if (typeof decoded.exp !== 'number' || typeof decoded.iat !== 'number') {
        throw new InvalidTokenError('invalid', 'token has no expiry');
      }
      return decoded as JwtClaims;
    },
  });
}

function ringOf(input: JwtSecretInput, audience: string): () => SecretSet {
  const check = (keys: SecretSet): SecretSet => {
    if (typeof keys.current?.secret !== 'string' || keys.current.secret.length === 0) {
      throw new TypeError(`JWT secret for app ${audience} is empty`);
    }
    return keys;
  };
  if (input instanceof JwtKeyRing) {
    check(input.keys);
    return () => input.keys;
  }
  const fixed = check(typeof input === 'string' ? secretSetOf(input) : input);
  return () => fixed;
}

/**
 * The secrets a token may have been signed with: the one its `kid` names (current, or previous
 * during the grace), or without a `kid` the current one, then the previous during the grace.
 */
function candidates(token: string, keys: SecretSet, nowMs: number): SecretKey[] {
  const previous =
    keys.previous && Date.parse(keys.previous.until) > nowMs && keys.previous.secret.length > 0
      ? keys.previous
      : undefined;
  const header = jwt.decode(token, { complete: true })?.header;
  const kid = typeof header?.kid === 'string' ? header.kid : undefined;
  const all = previous ? [keys.current, previous] : [keys.current];
  return kid === undefined ? all : all.filter((k) => k.kid === kid);
}

function verifyWithAny(token: string, keys: readonly SecretKey[]): string | jwt.JwtPayload {
  let failure: unknown = new Error('no secret with its key id');
  for (const key of keys) {
    try {
      return jwt.verify(token, key.secret, { algorithms: [ALGORITHM] });
    } catch (err) {
      failure = err;
      // A good signature that ran out: expired, whatever another key says.
      if (err instanceof jwt.TokenExpiredError) break;
    }
  }
  if (failure instanceof jwt.TokenExpiredError)
    throw new InvalidTokenError('expired', 'token expired', { cause: failure });
  throw new InvalidTokenError('invalid', `invalid token: ${(failure as Error).message}`, { cause: failure });
}
