/**
 * JWT helpers handed to every app (SPEC §7). HS256 only, pinned on both sign and verify.
 *
 * Every token carries `aud` = the issuing app's name (`main` for the main app). Which tokens an
 * app accepts:
 * - `own` secret: only tokens signed with its own secret AND `aud` = its name;
 * - `shared` secret: tokens signed with the main secret whose `aud` is its name or `main`, never
 *   another sub-app's, although that one signs with the same secret;
 * - the main app: the main secret, `aud` = `main` only.
 */
import jwt from 'jsonwebtoken';
import { AppvisorError } from '../errors.js';
import type { SecretMode } from '../manifests/types.js';

/** The audience of the main app's tokens; no sub-app may be named like it. */
export const MAIN_AUDIENCE = 'main';

const ALGORITHM = 'HS256' as const;

/** Claims the helpers set themselves; a payload passed to `sign()` cannot override them. */
const RESERVED_CLAIMS = new Set(['aud', 'exp', 'iat', 'nbf']);

export interface JwtHelpersOptions {
  /** The app's name; its tokens' audience. Ignored for the main app, whose audience is `main`. */
  readonly app: string;
  /** The app's own secret (used in `own` mode). */
  readonly ownSecret: string;
  readonly mode: SecretMode;
  /** The main app's secret (used by the main app and in `shared` mode). */
  readonly mainSecret: string;
  readonly isMain: boolean;
  /** Lifetime of signed tokens, in seconds or an `ms` string such as `'1h'`. @default '1h' */
  readonly expiresIn?: jwt.SignOptions['expiresIn'];
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
  const secret = useMainSecret ? options.mainSecret : options.ownSecret;
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TypeError(`JWT secret for app ${audience} is empty`);
  }
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
      return jwt.sign(claims, secret, { algorithm: ALGORITHM, expiresIn });
    },
    verify(token: string): JwtClaims {
      let decoded: string | jwt.JwtPayload;
      try {
        decoded = jwt.verify(token, secret, { algorithms: [ALGORITHM] });
      } catch (err) {
        if (err instanceof jwt.TokenExpiredError)
          throw new InvalidTokenError('expired', 'token expired', { cause: err });
        throw new InvalidTokenError('invalid', `invalid token: ${(err as Error).message}`, { cause: err });
      }
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
