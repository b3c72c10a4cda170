/** better-sqlite3's errors: its SQLITE_* result codes (file-system codes are shared). */
import { classifyWith, driverError, translateWith } from '../errors.js';
import type { DbErrorKind, DialectModule } from '../types.js';

const PERMISSION_CODES = new Set(['SQLITE_READONLY', 'SQLITE_PERM', 'SQLITE_AUTH']);

function own(err: unknown): DbErrorKind | undefined {
  const { code } = driverError(err);
  return typeof code === 'string' && PERMISSION_CODES.has(code) ? 'permission' : undefined;
}

export const classifyError: DialectModule['classifyError'] = (err) => classifyWith(err, own);

export const translateError: DialectModule['translateError'] = (err, ctx) =>
  translateWith(err, { ...ctx, dialect: 'sqlite' }, own);
