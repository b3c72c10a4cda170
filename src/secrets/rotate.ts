/**
 * A rotation of one app's JWT secret (SPEC §8.4): a new secret signs, the previous one still
 * verifies for the grace, then it is gone. Run under the leader's term (the server's leader, or
 * the CLI under the lease when no server runs); the store writes it, raises the records'
 * versions (the other replicas' signal) and the history entry naming who asked, in one
 * fenced transaction.
 */
import crypto from 'node:crypto';
import { parseDuration } from '../config/duration.js';
import { AppvisorError } from '../errors.js';
import { generateSecret } from '../providers/secrets.js';
import { kidOf } from '../runtime/jwt.js';
import { type Fence, MAIN_APP, type StateStore } from '../state/types.js';

/** SPEC §8.4: tokens signed with the old secret stay valid this long by default. */
export const DEFAULT_GRACE = '1h';

/** What a rotation did (no secret in it: key ids and times only). */
export interface RotationResult {
  readonly app: string;
  /** The key id of the new secret (the `kid` of the tokens it signs). */
  readonly kid: string;
  /** The key id of the secret it replaced, and until when that one still verifies. */
  readonly previousKid: string;
  readonly previousUntil: string;
  readonly graceMs: number;
}

/**
 * The grace as milliseconds; `0s` ends the old secret at once.
 * @throws AppvisorError CONFIG_INVALID for anything but a duration
 */
export function parseGrace(text: string | undefined): number {
  const value = text ?? DEFAULT_GRACE;
  const ms = parseDuration(value);
  if (ms === undefined) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `--grace must be a duration such as 30s, 15m or 1h (got "${value}")`,
    });
  }
  return ms;
}

export interface RotateOptions {
  readonly name: string;
  readonly graceMs: number;
  /** Who asked (`token <name> via <client>`), for the history and the log. */
  readonly by: string;
  readonly fence: Fence;
}

/**
 * Rotates `name`'s secret (`main`: the main app's, which `shared` apps follow).
 * @throws AppvisorError APP_NOT_FOUND (no app with a secret of its own of that name),
 *   CONFIG_INVALID (a `shared` app: rotate `main`), LOCK_LOST
 */
export async function rotateAppSecret(
  store: Pick<StateStore, 'getRecord' | 'getSecretSet' | 'rotateSecret'>,
  opts: RotateOptions,
): Promise<RotationResult> {
  const { name, graceMs, by, fence } = opts;
  const started = performance.now();
  const before = await store.getSecretSet(name);
  if (!before) {
    const record = name === MAIN_APP ? undefined : await store.getRecord(name);
    if (record?.spec.jwt.secret === 'shared') {
      throw new AppvisorError('CONFIG_INVALID', {
        detail: `app ${name} has jwt.secret: shared and signs with the main app's secret; rotate that one (appvisor rotate-secret main)`,
      });
    }
    throw new AppvisorError('APP_NOT_FOUND', { app: name });
  }
  const secret = generateSecret();
  const kid = kidOf(secret);
  const at = new Date().toISOString();
  const until = new Date(Date.now() + graceMs).toISOString();
  const after = await store.rotateSecret(
    name,
    {
      secret,
      previousUntil: graceMs > 0 ? until : at,
      entry: {
        app: name,
        reconcileId: `rotate-secret-${crypto.randomBytes(4).toString('hex')}`,
        at,
        outcome: 'updated',
        steps: [
          {
            action: 'rotate-secret',
            detail:
              graceMs > 0
                ? `new key ${kid}; key ${before.current.kid} verifies until ${until}`
                : `new key ${kid}; key ${before.current.kid} no longer verifies`,
            result: 'updated',
          },
        ],
        durationMs: performance.now() - started,
        by,
      },
    },
    fence,
  );
  return {
    app: name,
    kid: after.current.kid,
    previousKid: before.current.kid,
    previousUntil: graceMs > 0 ? until : at,
    graceMs,
  };
}
