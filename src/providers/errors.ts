/**
 * Driver errors → AppvisorError, through the dialect that raised them (src/dialects/<dialect>/errors.ts
 * holds each driver's codes, src/dialects/errors.ts what they share).
 */

import type { DbErrorContext } from '../dialects/errors.js';
import { dialectNamed } from '../dialects/registry.js';
import type { AppvisorError } from '../errors.js';
import type { Dialect } from './provider.js';

/** Whether a driver error means the server cannot be reached (down, restarting, connection lost). */
export function isUnreachable(err: unknown, dialect: Dialect): boolean {
  return dialectNamed(dialect).classifyError(err) === 'unreachable';
}

/**
 * Turns any driver error into an AppvisorError: DB_UNREACHABLE (retryable), DB_PERMISSION_DENIED
 * (terminal) or DB_OPERATION_FAILED (retryable). AppvisorErrors pass through unchanged.
 */
export function translateDbError(err: unknown, ctx: DbErrorContext): AppvisorError {
  return dialectNamed(ctx.dialect).translateError(err, ctx);
}
