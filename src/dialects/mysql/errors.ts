/** mysql2's errors: the server's error numbers (and its client's, 2002 and up). */
import { classifyWith, driverError, translateWith } from '../errors.js';
import type { DbErrorKind, DialectModule } from '../types.js';

/**
 * 1044 ER_DBACCESS_DENIED_ERROR, 1045 ER_ACCESS_DENIED_ERROR, 1142 ER_TABLEACCESS_DENIED_ERROR,
 * 1143 ER_COLUMNACCESS_DENIED_ERROR, 1227 ER_SPECIFIC_ACCESS_DENIED_ERROR,
 * 1698 ER_ACCESS_DENIED_NO_PASSWORD_ERROR.
 */
const PERMISSION_ERRNOS = new Set([1044, 1045, 1142, 1143, 1227, 1698]);
/** 1040 ER_CON_COUNT_ERROR, 1053 ER_SERVER_SHUTDOWN, 1927 ER_CONNECTION_KILLED, 2002/2003/2006/2013 client. */
const UNREACHABLE_ERRNOS = new Set([1040, 1053, 1927, 2002, 2003, 2006, 2013]);

function own(err: unknown): DbErrorKind | undefined {
  const { errno } = driverError(err);
  if (typeof errno !== 'number') return undefined;
  if (PERMISSION_ERRNOS.has(errno)) return 'permission';
  if (UNREACHABLE_ERRNOS.has(errno)) return 'unreachable';
  return undefined;
}

export const classifyError: DialectModule['classifyError'] = (err) => classifyWith(err, own);

export const translateError: DialectModule['translateError'] = (err, ctx) =>
  translateWith(err, { ...ctx, dialect: 'mysql' }, own);
