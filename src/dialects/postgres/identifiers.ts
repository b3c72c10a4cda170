import pg from 'pg';
import { checkIdentifier, type IdentifierKind, type IdentifierRules } from '../identifiers.js';

/** 63 bytes: NAMEDATALEN - 1. */
export const rules: IdentifierRules = { maxLength: 63, unit: 'bytes' };

export const validateIdentifier = (kind: IdentifierKind, name: string): string =>
  checkIdentifier(rules, kind, name);

/** Validates `name` and quotes it as an identifier with the driver's own escaping. */
export const quoteIdentifier = (kind: IdentifierKind, name: string): string =>
  pg.escapeIdentifier(validateIdentifier(kind, name));

/** Quotes a string literal with the driver's own escaping. */
export const quoteLiteral = (value: string): string => pg.escapeLiteral(value);
