/**
 * Database and schema names: validated before any SQL is built, then quoted by each
 * dialect's own driver. A name that fails validation never reaches a server or the file system.
 */
import mysql from 'mysql2';
import pg from 'pg';
import { AppvisorError } from '../errors.js';
import type { Dialect } from './provider.js';

export type IdentifierKind = 'database' | 'schema';

/** The longest name each dialect accepts: PostgreSQL 63 bytes (NAMEDATALEN - 1), MySQL 64 characters. */
export const MAX_IDENTIFIER_LENGTH: Readonly<Record<Dialect, number>> = {
  postgres: 63,
  mysql: 64,
  // A file name component; kept in line with the server dialects so a name works everywhere.
  sqlite: 64,
};

/** Longest ownership marker (MariaDB keeps at most 1024 characters of a schema comment). */
export const MAX_OWNER_LENGTH = 255;

const ALLOWED = /^[A-Za-z0-9_-]+$/;

/**
 * Checks `name` for `dialect` and returns it unchanged, or throws INVALID_IDENTIFIER.
 * Only letters, digits, `_` and `-` pass, so no quote, NUL, `.`, `/` or space can get through.
 */
export function validateIdentifier(dialect: Dialect, kind: IdentifierKind, name: string): string {
  const reason = identifierProblem(dialect, name);
  if (reason) throw new AppvisorError('INVALID_IDENTIFIER', { kind, name: JSON.stringify(name), reason });
  return name;
}

function identifierProblem(dialect: Dialect, name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'it is empty';
  if (name.includes('\0')) return 'it contains a NUL character';
  const max = MAX_IDENTIFIER_LENGTH[dialect];
  const length = dialect === 'postgres' ? Buffer.byteLength(name, 'utf8') : [...name].length;
  if (length > max) return `it is longer than ${max} ${dialect === 'postgres' ? 'bytes' : 'characters'}`;
  if (!ALLOWED.test(name)) return 'only letters, digits, "_" and "-" are allowed';
  return undefined;
}

/** Checks an ownership marker (it is stored as a comment, quoted as a literal). */
export function validateOwner(owner: string): string {
  let reason: string | undefined;
  if (typeof owner !== 'string' || owner === '') reason = 'it is empty';
  else if (owner.includes('\0')) reason = 'it contains a NUL character';
  else if (owner.length > MAX_OWNER_LENGTH) reason = `it is longer than ${MAX_OWNER_LENGTH} characters`;
  if (reason)
    throw new AppvisorError('INVALID_IDENTIFIER', {
      kind: 'owner marker',
      name: JSON.stringify(owner),
      reason,
    });
  return owner;
}

/**
 * Checks that `name` is a leftover of an interrupted create (it matches `temporary`), and the
 * owner marker it must carry, before a sweep; throws INVALID_IDENTIFIER otherwise.
 */
export function validateLeftover(
  kind: 'database' | 'file',
  name: string,
  temporary: RegExp,
  owner: string,
): void {
  if (!temporary.test(name)) {
    throw new AppvisorError('INVALID_IDENTIFIER', {
      kind,
      name: JSON.stringify(name),
      reason: `only temporary ${kind}s of an interrupted create are swept`,
    });
  }
  validateOwner(owner);
}

/** Validates `name` and quotes it as an identifier with the driver's own escaping. */
export function quoteIdentifier(dialect: 'postgres' | 'mysql', kind: IdentifierKind, name: string): string {
  validateIdentifier(dialect, kind, name);
  return dialect === 'postgres' ? pg.escapeIdentifier(name) : mysql.escapeId(name, true);
}

/** Quotes a string literal with the driver's own escaping. */
export function quoteLiteral(dialect: 'postgres' | 'mysql', value: string): string {
  return dialect === 'postgres' ? pg.escapeLiteral(value) : mysql.escape(value);
}
