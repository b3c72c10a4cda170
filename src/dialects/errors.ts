/**
 * Driver errors (pg, mysql2, better-sqlite3, node:fs) → AppvisorError, keeping the server's
 * own message. Permission problems are terminal and loud; outages and everything else retry.
 * What is common to every driver lives here; each dialect adds its own codes (its errors.ts).
 */
import { AppvisorError } from '../errors.js';
import type { Dialect } from '../providers/provider.js';
import type { DbErrorKind } from './types.js';

/** Where a driver error happened, for the message. */
export interface DbErrorContext {
  readonly dialect: Dialect;
  /** Redacted server description. */
  readonly server: string;
  /** What was being done, e.g. `create database "crm"`. */
  readonly operation: string;
}

/** Node socket and DNS errors, and mysql2's own connection error codes. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_ENQUEUE_AFTER_QUIT',
  'POOL_CLOSED',
]);

/** The fields of a driver error that classification reads. */
export interface DriverErrorShape {
  readonly code?: unknown;
  readonly errno?: unknown;
  readonly message?: unknown;
  readonly sqlState?: unknown;
}

/** `err` as the fields drivers set, whatever was thrown. */
export function driverError(err: unknown): DriverErrorShape {
  return (typeof err === 'object' && err !== null ? err : {}) as DriverErrorShape;
}

/** Socket and file-system codes first (any driver), then the dialect's own, else 'failed'. */
export function classifyWith(err: unknown, dialect: (err: unknown) => DbErrorKind | undefined): DbErrorKind {
  const { code } = driverError(err);
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return 'unreachable';
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'permission';
  return dialect(err) ?? 'failed';
}

/** The server's message with its code, e.g. `permission denied to create database (42501)`. */
function detailOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as DriverErrorShape;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message =
    err.message || (err instanceof AggregateError ? err.errors.map(detailOf).join('; ') : '') || code;
  return code && !message?.includes(code) ? `${message} (${code})` : (message ?? 'unknown error');
}

/**
 * Turns any driver error into an AppvisorError: DB_UNREACHABLE (retryable), DB_PERMISSION_DENIED
 * (terminal) or DB_OPERATION_FAILED (retryable). AppvisorErrors pass through unchanged.
 */
export function translateWith(
  err: unknown,
  ctx: DbErrorContext,
  dialect: (err: unknown) => DbErrorKind | undefined,
): AppvisorError {
  if (err instanceof AppvisorError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  // Connecting to a database that does not exist: say what to do about it.
  const hint =
    code === '3D000' || code === 'ER_BAD_DB_ERROR'
      ? '; create that database first, or name one that exists'
      : '';
  const detail = `${detailOf(err)}${hint}`;
  const params = { dialect: ctx.dialect, server: ctx.server, operation: ctx.operation, detail };
  switch (classifyWith(err, dialect)) {
    case 'unreachable':
      return new AppvisorError('DB_UNREACHABLE', params, { cause: err });
    case 'permission':
      return new AppvisorError('DB_PERMISSION_DENIED', params, { cause: err });
    case 'failed':
      return new AppvisorError('DB_OPERATION_FAILED', params, { cause: err });
  }
}
