/** pg's errors: SQLSTATEs, and the messages it reports lost connections with. */
import { classifyWith, driverError, translateWith } from '../errors.js';
import type { DbErrorKind, DialectModule } from '../types.js';

/** SQLSTATEs meaning the server is going away or not accepting connections (classes 08 and 57P). */
const UNREACHABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** 42501 insufficient_privilege; 28000 / 28P01 authentication failed. */
const PERMISSION_STATES = new Set(['42501', '28000', '28P01']);

/** pg reports lost and timed-out connections without a code; only its messages tell. */
const UNREACHABLE_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|connection timeout|client has encountered a connection error|cannot use a pool after calling end|connection refused/i;

function own(err: unknown): DbErrorKind | undefined {
  const e = driverError(err);
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code && /^[0-9A-Z]{5}$/.test(code)) {
    if (code.startsWith('08') || UNREACHABLE_STATES.has(code)) return 'unreachable';
    if (PERMISSION_STATES.has(code)) return 'permission';
    return 'failed';
  }
  if (UNREACHABLE_MESSAGES.test(typeof e.message === 'string' ? e.message : '')) return 'unreachable';
  return undefined;
}

export const classifyError: DialectModule['classifyError'] = (err) => classifyWith(err, own);

export const translateError: DialectModule['translateError'] = (err, ctx) =>
  translateWith(err, { ...ctx, dialect: 'postgres' }, own);

/** Errors after which a connection must not go back to its pool (no SQLSTATE, classes 08 and 57P). */
export function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('08') || code.startsWith('57P')
  );
}

/** `err` as an Error (pg's callbacks and rejections may carry anything). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
