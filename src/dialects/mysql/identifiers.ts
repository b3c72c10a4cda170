import mysql from 'mysql2';
import { checkIdentifier, type IdentifierKind, type IdentifierRules } from '../identifiers.js';

export const rules: IdentifierRules = { maxLength: 64, unit: 'characters' };

export const validateIdentifier = (kind: IdentifierKind, name: string): string =>
  checkIdentifier(rules, kind, name);

/** Validates `name` and quotes it as an identifier with the driver's own escaping. */
export const quoteIdentifier = (kind: IdentifierKind, name: string): string =>
  mysql.escapeId(validateIdentifier(kind, name), true);

/** Quotes a string literal with the driver's own escaping. */
export const quoteLiteral = (value: string): string => mysql.escape(value);
