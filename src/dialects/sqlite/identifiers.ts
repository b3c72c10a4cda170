import { checkIdentifier, type IdentifierKind, type IdentifierRules, isIdentifier } from '../identifiers.js';

/** A file name component; kept in line with the server dialects so a name works everywhere. */
export const rules: IdentifierRules = { maxLength: 64, unit: 'characters' };

export const validateIdentifier = (kind: IdentifierKind, name: string): string =>
  checkIdentifier(rules, kind, name);

export const isValidName = (name: string): boolean => isIdentifier(rules, name);
