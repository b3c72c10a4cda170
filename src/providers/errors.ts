/**
 * Driver errors (pg, mysql2, better-sqlite3, node:fs) → AppvisorError, keeping the server's
 * own message. Permission problems are terminal and loud; outages and everything else retry.
 */
import { AppvisorError } from '../errors.js';
import type { Dialect } from './provider.js';

/** Where a driver error happened, for the message. */
export interface DbErrorContext {
  readonly dialect: Dialect;
  /** Redacted server description. */
  readonly server: string;
  /** What was being done, e.g. `create database "crm"`. */
  readonly operation: string;
}

type DbErrorKind = 'unreachable' | 'permission' | 'failed';

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

/** SQLSTATEs meaning the server is going away or not accepting connections (classes 08 and 57P). */
const PG_UNREACHABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** 42501 insufficient_privilege; 28000 / 28P01 authentication failed. */
const PG_PERMISSION_STATES = new Set(['42501', '28000', '28P01']);

/**
 * MySQL error numbers: 1044 ER_DBACCESS_DENIED_ERROR, 1045 ER_ACCESS_DENIED_ERROR,
 * 1142 ER_TABLEACCESS_DENIED_ERROR, 1143 ER_COLUMNACCESS_DENIED_ERROR,
 * 1227 ER_SPECIFIC_ACCESS_DENIED_ERROR, 1698 ER_ACCESS_DENIED_NO_PASSWORD_ERROR.
 */
const MYSQL_PERMISSION_ERRNOS = new Set([1044, 1045, 1142, 1143, 1227, 1698]);
/** 1040 ER_CON_COUNT_ERROR, 1053 ER_SERVER_SHUTDOWN, 1927 ER_CONNECTION_KILLED, 2002/2003/2006/2013 client. */
const MYSQL_UNREACHABLE_ERRNOS = new Set([1040, 1053, 1927, 2002, 2003, 2006, 2013]);

/** pg reports lost and timed-out connections without a code; only its messages tell. */
const PG_UNREACHABLE_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|connection timeout|client has encountered a connection error|cannot use a pool after calling end|connection refused/i;

interface DriverErrorShape {
  readonly code?: unknown;
  readonly errno?: unknown;
  readonly message?: unknown;
  readonly sqlState?: unknown;
}

function classify(err: unknown, dialect: Dialect): DbErrorKind {
  const e = (typeof err === 'object' && err !== null ? err : {}) as DriverErrorShape;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : '';
  if (code && UNREACHABLE_CODES.has(code)) return 'unreachable';
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'permission';
  if (dialect === 'postgres') {
    if (code && /^[0-9A-Z]{5}$/.test(code)) {
      if (code.startsWith('08') || PG_UNREACHABLE_STATES.has(code)) return 'unreachable';
      if (PG_PERMISSION_STATES.has(code)) return 'permission';
      return 'failed';
    }
    if (PG_UNREACHABLE_MESSAGES.test(message)) return 'unreachable';
  }
  if (dialect === 'mysql' && typeof e.errno === 'number') {
    if (MYSQL_PERMISSION_ERRNOS.has(e.errno)) return 'permission';
    if (MYSQL_UNREACHABLE_ERRNOS.has(e.errno)) return 'unreachable';
  }
  if (
    dialect === 'sqlite' &&
    (code === 'SQLITE_READONLY' || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH')
  ) {
    return 'permission';
  }
  return 'failed';
}

/** Whether a driver error means the server cannot be reached (down, restarting, connection lost). */
export function isUnreachable(err: unknown, dialect: Dialect): boolean {
  return classify(err, dialect) === 'unreachable';
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
export function translateDbError(err: unknown, ctx: DbErrorContext): AppvisorError {
  if (err instanceof AppvisorError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  // Connecting to a database that does not exist: say what to do about it.
  const hint =
    code === '3D000' || code === 'ER_BAD_DB_ERROR'
      ? '; create that database first, or name one that exists'
      : '';
  const detail = `${detailOf(err)}${hint}`;
  const params = { dialect: ctx.dialect, server: ctx.server, operation: ctx.operation, detail };
  switch (classify(err, ctx.dialect)) {
    case 'unreachable':
      return new AppvisorError('DB_UNREACHABLE', params, { cause: err });
    case 'permission':
      return new AppvisorError('DB_PERMISSION_DENIED', params, { cause: err });
    case 'failed':
      return new AppvisorError('DB_OPERATION_FAILED', params, { cause: err });
  }
}

/** The error an aborted operation rejects with: the signal's reason (the executor's STEP_TIMEOUT). */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/**
 * Runs `work` and settles as soon as `signal` aborts, rejecting with its reason; `onAbort` then
 * gets a chance to stop the work on the server (cancel the query, drop the connection).
 * A late result or error of `work` is swallowed, so nothing is left unhandled.
 */
export function abortable<T>(
  work: () => Promise<T>,
  signal: AbortSignal | undefined,
  onAbort?: () => void,
): Promise<T> {
  if (!signal) return work();
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const aborted = (): void => {
      reject(abortReason(signal));
      onAbort?.();
    };
    signal.addEventListener('abort', aborted, { once: true });
    Promise.resolve()
      .then(work)
      .then(
        (value) => {
          signal.removeEventListener('abort', aborted);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', aborted);
          reject(err);
        },
      );
  });
}
