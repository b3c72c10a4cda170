import { describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import {
  quoteIdentifier,
  quoteLiteral,
  validateIdentifier,
  validateOwner,
} from '../../src/providers/identifiers.js';
import type { Dialect } from '../../src/providers/provider.js';

const DIALECTS: readonly Dialect[] = ['sqlite', 'postgres', 'mysql'];

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(AppvisorError);
    expect((err as AppvisorError).code).toBe('INVALID_IDENTIFIER');
    return String((err as AppvisorError).params.reason);
  }
}

describe('validateIdentifier', () => {
  it.each(DIALECTS)('accepts letters, digits, _ and - on %s', (dialect) => {
    for (const name of ['crm', 'a-b_c', 'A1', '_x', '9lives', 'x'.repeat(63)]) {
      expect(validateIdentifier(dialect, 'database', name)).toBe(name);
    }
  });

  it.each([
    ['', 'it is empty'],
    ['a\0b', 'NUL'],
    ['x"; DROP DATABASE postgres; --', 'only letters'],
    ['a.b', 'only letters'],
    ['../etc', 'only letters'],
    ['a/b', 'only letters'],
    ['a\\b', 'only letters'],
    ['a b', 'only letters'],
    ["a'b", 'only letters'],
    ['a`b', 'only letters'],
    ['é', 'only letters'],
    ['x'.repeat(70), 'longer than'],
  ])('rejects %j on every dialect (%s)', (name, reason) => {
    for (const dialect of DIALECTS) {
      expect(reasonOf(() => validateIdentifier(dialect, 'schema', name))).toContain(reason);
    }
  });

  it.each([
    ['postgres', 63, 64],
    ['mysql', 64, 65],
    ['sqlite', 64, 65],
  ] as const)('on %s allows %i characters and rejects %i', (dialect, ok, tooLong) => {
    expect(reasonOf(() => validateIdentifier(dialect, 'database', 'a'.repeat(ok)))).toBeUndefined();
    expect(reasonOf(() => validateIdentifier(dialect, 'database', 'a'.repeat(tooLong)))).toContain(
      'longer than',
    );
  });

  it('names the kind and the name in its message', () => {
    expect(() => validateIdentifier('postgres', 'schema', 'a.b')).toThrow('schema name "a.b" is not allowed');
  });
});

describe('quoting', () => {
  it.each([
    ['postgres', 'a-b', '"a-b"'],
    ['mysql', 'a-b', '`a-b`'],
  ] as const)('quotes %s identifiers with the driver (%s → %s)', (dialect, name, quoted) => {
    expect(quoteIdentifier(dialect, 'database', name)).toBe(quoted);
  });

  it('validates before quoting', () => {
    expect(reasonOf(() => quoteIdentifier('postgres', 'database', 'a"b'))).toContain('only letters');
  });

  it.each([
    ['postgres', "it's", "'it''s'"],
    ['postgres', 'a\\b', " E'a\\\\b'"],
    ['mysql', "it's", "'it\\'s'"],
  ] as const)('quotes %s literals (%j → %s)', (dialect, value, quoted) => {
    expect(quoteLiteral(dialect, value)).toBe(quoted);
  });
});

describe('validateOwner', () => {
  it.each([
    ['', 'empty'],
    ['a\0b', 'NUL'],
    ['x'.repeat(256), 'longer than 255'],
  ])('rejects %j', (owner, reason) => {
    expect(reasonOf(() => validateOwner(owner))).toContain(reason);
  });

  it('accepts quotes and punctuation (markers are quoted as literals)', () => {
    expect(validateOwner(`appvisor:store-1:crm 'x' "y"`)).toBe(`appvisor:store-1:crm 'x' "y"`);
  });
});
