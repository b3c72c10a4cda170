/**
 * Database and schema names: validated before any SQL is built, then quoted by each
 * dialect's own driver (its identifiers.ts). A name that fails validation never reaches a
 * server or the file system.
 */
import { AppvisorError } from '../errors.js';

export type IdentifierKind = 'database' | 'schema';

/** How long a name a dialect accepts, and how it counts. */
export interface IdentifierRules {
  readonly maxLength: number;
  readonly unit: 'bytes' | 'characters';
}

/** Longest ownership marker (MariaDB keeps at most 1024 characters of a schema comment). */
export const MAX_OWNER_LENGTH = 255;

const ALLOWED = /^[A-Za-z0-9_-]+$/;

/**
 * Checks `name` against `rules` and returns it unchanged, or throws INVALID_IDENTIFIER.
 * Only letters, digits, `_` and `-` pass, so no quote, NUL, `.`, `/` or space can get through.
 */
export function checkIdentifier(rules: IdentifierRules, kind: IdentifierKind, name: string): string {
  const reason = identifierProblem(rules, name);
  if (reason) throw new AppvisorError('INVALID_IDENTIFIER', { kind, name: JSON.stringify(name), reason });
  return name;
}

/** Whether `name` passes checkIdentifier (for a listing that skips what no app's name could be). */
export function isIdentifier(rules: IdentifierRules, name: string): boolean {
  return identifierProblem(rules, name) === undefined;
}

function identifierProblem(rules: IdentifierRules, name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'it is empty';
  if (name.includes('\0')) return 'it contains a NUL character';
  const length = rules.unit === 'bytes' ? Buffer.byteLength(name, 'utf8') : [...name].length;
  if (length > rules.maxLength) return `it is longer than ${rules.maxLength} ${rules.unit}`;
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
