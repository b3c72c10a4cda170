import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  AppvisorError,
  ERRORS,
  type ErrorCode,
  isErrorCode,
  isTerminal,
  summaryOf,
  toAppvisorError,
} from '../src/errors.js';
import { translateDbError } from '../src/providers/errors.js';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const codes = Object.keys(ERRORS) as ErrorCode[];

describe('error registry', () => {
  it.each(codes)('%s is documented in README.md with its HTTP status', (code) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    expect(row, `README.md has no table row for ${code}`).toBeDefined();
    const status: number | undefined = (ERRORS[code] as { status?: number }).status;
    if (status !== undefined) expect(row).toContain(`| ${status} |`);
  });

  it('renders message templates and keeps unknown placeholders visible', () => {
    const err = new AppvisorError('APP_NOT_FOUND', { app: 'crm' });
    expect(err.message).toBe('no app named crm');
    expect(err.status).toBe(404);
    expect(new AppvisorError('APP_DISABLED').message).toBe('app {app} is disabled');
  });

  it('marks non-retryable errors terminal unless overridden', () => {
    expect(isTerminal(new AppvisorError('ADOPT_REFUSED', { kind: 'database', name: 'x' }))).toBe(true);
    expect(isTerminal(new AppvisorError('DB_UNREACHABLE'))).toBe(false);
    expect(isTerminal(new AppvisorError('DB_OPERATION_FAILED', {}, { retryable: false }))).toBe(true);
    expect(isTerminal(new Error('plain'))).toBe(false);
  });
});

describe('toAppvisorError', () => {
  const DB = { operation: 'upgrade', dialect: 'postgres', server: 'pg://db' };

  it('returns an AppvisorError unchanged, whatever the fallback', () => {
    const err = new AppvisorError('DB_PERMISSION_DENIED', { detail: 'no' });
    expect(toAppvisorError(err, 'APP_ERROR', { app: 'crm' })).toBe(err);
    expect(summaryOf(err, 'APP_ERROR')).toEqual({ code: 'DB_PERMISSION_DENIED', message: err.message });
  });

  it.each([
    ['a PostgreSQL SQLSTATE', Object.assign(new Error('relation "notes" does not exist'), { code: '42P01' })],
    ['a MySQL error code', Object.assign(new Error("Unknown database 'crm'"), { code: 'ER_BAD_DB_ERROR' })],
    ['a socket error code', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['an object with a registry-looking code', { code: 'APP_DISABLED', message: 'not really' }],
  ])('never takes the code of %s, and keeps its message as the detail', (_label, err) => {
    const wrapped = toAppvisorError(err, 'DB_OPERATION_FAILED', DB);
    expect(wrapped.code).toBe('DB_OPERATION_FAILED');
    expect(wrapped.params.detail).toBe(String(err instanceof Error ? err.message : err));
    expect(wrapped.message).toBe(`upgrade failed on postgres server pg://db: ${wrapped.params.detail}`);
    expect(wrapped.cause).toBe(err);
    expect(wrapped.retryable).toBe(true);
  });

  it('wraps thrown strings and undefined too', () => {
    expect(summaryOf('boom', 'APP_ERROR', { app: 'crm' })).toEqual({
      code: 'APP_ERROR',
      message: 'app crm failed: boom',
    });
    expect(toAppvisorError(undefined, 'APP_ERROR', { app: 'crm' }).code).toBe('APP_ERROR');
  });

  it('keeps a detail given in the params, and a fallback without {detail} shows nothing of the original', () => {
    expect(toAppvisorError(new Error('raw'), 'APP_ERROR', { app: 'a', detail: 'told' }).message).toBe(
      'app a failed: told',
    );
    expect(toAppvisorError(new Error('secret'), 'INTERNAL').message).toBe('internal error');
  });

  it('after the dialect translation, a driver error keeps a registry code', () => {
    const driver = Object.assign(new Error('permission denied to create database'), { code: '42501' });
    const translated = translateDbError(driver, {
      dialect: 'postgres',
      server: 'pg://db',
      operation: 'create',
    });
    expect(toAppvisorError(translated, 'APP_ERROR').code).toBe('DB_PERMISSION_DENIED');
  });
});

describe('isErrorCode', () => {
  it.each([
    ['APP_NOT_FOUND', true],
    ['DB_OPERATION_FAILED', true],
    ['42P01', false],
    ['ER_BAD_DB_ERROR', false],
    ['toString', false],
    ['', false],
    [undefined, false],
    [42, false],
  ])('%s -> %s', (x, expected) => {
    expect(isErrorCode(x)).toBe(expected);
  });
});
