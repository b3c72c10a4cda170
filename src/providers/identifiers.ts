/**
 * Database and schema names, by dialect: validated before any SQL is built, then quoted by the
 * dialect's own driver (src/dialects/identifiers.ts and each dialect's identifiers.ts).
 */

import { checkIdentifier, type IdentifierKind } from '../dialects/identifiers.js';
import { dialectNamed } from '../dialects/registry.js';
import type { Dialect } from './provider.js';

export {
  type IdentifierKind,
  MAX_OWNER_LENGTH,
  validateLeftover,
  validateOwner,
} from '../dialects/identifiers.js';

/**
 * Checks `name` for `dialect` and returns it unchanged, or throws INVALID_IDENTIFIER.
 * Only letters, digits, `_` and `-` pass, so no quote, NUL, `.`, `/` or space can get through.
 */
export function validateIdentifier(dialect: Dialect, kind: IdentifierKind, name: string): string {
  return checkIdentifier(dialectNamed(dialect).identifiers.rules, kind, name);
}

function quoting(dialect: Dialect): {
  quoteIdentifier: (kind: IdentifierKind, name: string) => string;
  quoteLiteral: (value: string) => string;
} {
  const { quoteIdentifier, quoteLiteral } = dialectNamed(dialect).identifiers;
  if (!quoteIdentifier || !quoteLiteral) throw new TypeError(`${dialect} builds no SQL with quoted names`);
  return { quoteIdentifier, quoteLiteral };
}

/** Validates `name` and quotes it as an identifier with the driver's own escaping. */
export function quoteIdentifier(dialect: Dialect, kind: IdentifierKind, name: string): string {
  return quoting(dialect).quoteIdentifier(kind, name);
}

/** Quotes a string literal with the driver's own escaping. */
export function quoteLiteral(dialect: Dialect, value: string): string {
  return quoting(dialect).quoteLiteral(value);
}
