import { describe, expect, it, vi } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { abortable } from '../../src/providers/abort.js';
import { translateDbError } from '../../src/providers/errors.js';
import type { Dialect } from '../../src/providers/provider.js';

function driverError(message: string, fields: Record<string, unknown>): Error {
  return Object.assign(new Error(message), fields);
}

const CASES: readonly [string, Dialect, Error, string, boolean][] = [
  [
    'refused',
    'postgres',
    driverError('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED' }),
    'DB_UNREACHABLE',
    true,
  ],
  ['DNS', 'mysql', driverError('getaddrinfo ENOTFOUND db', { code: 'ENOTFOUND' }), 'DB_UNREACHABLE', true],
  ['pg lost', 'postgres', new Error('Connection terminated unexpectedly'), 'DB_UNREACHABLE', true],
  ['pg timeout', 'postgres', new Error('timeout exceeded when trying to connect'), 'DB_UNREACHABLE', true],
  [
    'pg shutdown',
    'postgres',
    driverError('terminating connection due to administrator command', { code: '57P01' }),
    'DB_UNREACHABLE',
    true,
  ],
  [
    'pg starting',
    'postgres',
    driverError('the database system is starting up', { code: '57P03' }),
    'DB_UNREACHABLE',
    true,
  ],
  ['pg 08006', 'postgres', driverError('connection failure', { code: '08006' }), 'DB_UNREACHABLE', true],
  [
    'mysql lost',
    'mysql',
    driverError('Connection lost', { code: 'PROTOCOL_CONNECTION_LOST' }),
    'DB_UNREACHABLE',
    true,
  ],
  [
    'mysql 1053',
    'mysql',
    driverError('Server shutdown in progress', { code: 'ER_SERVER_SHUTDOWN', errno: 1053 }),
    'DB_UNREACHABLE',
    true,
  ],
  [
    'pg 42501',
    'postgres',
    driverError('permission denied to create database', { code: '42501' }),
    'DB_PERMISSION_DENIED',
    false,
  ],
  [
    'pg 28P01',
    'postgres',
    driverError('password authentication failed', { code: '28P01' }),
    'DB_PERMISSION_DENIED',
    false,
  ],
  [
    'mysql 1044',
    'mysql',
    driverError("Access denied for user 'u'@'%' to database 'x'", {
      code: 'ER_DBACCESS_DENIED_ERROR',
      errno: 1044,
    }),
    'DB_PERMISSION_DENIED',
    false,
  ],
  [
    'mysql 1045',
    'mysql',
    driverError("Access denied for user 'u'@'h'", { code: 'ER_ACCESS_DENIED_ERROR', errno: 1045 }),
    'DB_PERMISSION_DENIED',
    false,
  ],
  [
    'mysql 1142',
    'mysql',
    driverError('CREATE command denied', { code: 'ER_TABLEACCESS_DENIED_ERROR', errno: 1142 }),
    'DB_PERMISSION_DENIED',
    false,
  ],
  [
    'mysql 1227',
    'mysql',
    driverError('Access denied; you need the SUPER privilege', {
      code: 'ER_SPECIFIC_ACCESS_DENIED_ERROR',
      errno: 1227,
    }),
    'DB_PERMISSION_DENIED',
    false,
  ],
  [
    'fs EACCES',
    'sqlite',
    driverError("EACCES: permission denied, mkdir '/data/apps'", { code: 'EACCES' }),
    'DB_PERMISSION_DENIED',
    false,
  ],
  [
    'sqlite readonly',
    'sqlite',
    driverError('attempt to write a readonly database', { code: 'SQLITE_READONLY' }),
    'DB_PERMISSION_DENIED',
    false,
  ],
  [
    'pg other',
    'postgres',
    driverError('source database "template1" is being accessed by other users', { code: '55006' }),
    'DB_OPERATION_FAILED',
    true,
  ],
  [
    'mysql other',
    'mysql',
    driverError('Lock wait timeout exceeded', { code: 'ER_LOCK_WAIT_TIMEOUT', errno: 1205 }),
    'DB_OPERATION_FAILED',
    true,
  ],
  [
    'sqlite busy',
    'sqlite',
    driverError('database is locked', { code: 'SQLITE_BUSY' }),
    'DB_OPERATION_FAILED',
    true,
  ],
  ['unknown', 'postgres', new Error('something odd'), 'DB_OPERATION_FAILED', true],
];

describe('translateDbError', () => {
  it.each(CASES)('%s → %s', (_label, dialect, err, code, retryable) => {
    const ctx = { dialect, server: 'srv://u@h:1', operation: 'create database "crm"' };
    const out = translateDbError(err, ctx);
    expect(out.code).toBe(code);
    expect(out.retryable).toBe(retryable);
    expect(out.cause).toBe(err);
    // The server's own message is kept, and the server named.
    expect(out.message).toContain(err.message);
    expect(out.message).toContain('srv://u@h:1');
  });

  it('keeps the operation and the server code in permission messages', () => {
    const err = driverError('permission denied to create database', { code: '42501' });
    const out = translateDbError(err, {
      dialect: 'postgres',
      server: 's',
      operation: 'create database "crm"',
    });
    expect(out.message).toBe(
      'postgres server s refused create database "crm": permission denied to create database (42501)',
    );
  });

  it('passes AppvisorErrors through unchanged', () => {
    const err = new AppvisorError('INVALID_IDENTIFIER', { kind: 'database', name: 'x', reason: 'r' });
    expect(translateDbError(err, { dialect: 'mysql', server: 's', operation: 'o' })).toBe(err);
  });
});

describe('abortable', () => {
  it('returns the work’s result when nothing aborts', async () => {
    expect(await abortable(async () => 7, new AbortController().signal)).toBe(7);
    expect(await abortable(async () => 8, undefined)).toBe(8);
  });

  it('rejects with the reason at once when aborted, calls onAbort and swallows the late failure', async () => {
    const controller = new AbortController();
    const onAbort = vi.fn();
    let failLate: (err: Error) => void = () => undefined;
    const work = new Promise<never>((_resolve, reject) => {
      failLate = reject;
    });
    const pending = abortable(() => work, controller.signal, onAbort);
    const reason = new Error('step timed out');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(onAbort).toHaveBeenCalledOnce();
    // A rejection after the abort must not surface as an unhandled rejection (vitest would fail the run).
    failLate(new Error('late'));
    await new Promise((resolve) => setImmediate(resolve));
  });

  it('does not start the work when already aborted', async () => {
    const work = vi.fn(async () => 1);
    const reason = new Error('already');
    await expect(abortable(work, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(work).not.toHaveBeenCalled();
  });
});

describe('a database that does not exist', () => {
  it.each([
    ['postgres', driverError('database "nope" does not exist', { code: '3D000' })],
    ['mysql', driverError("Unknown database 'nope'", { code: 'ER_BAD_DB_ERROR' })],
  ] as const)('%s: says to create it or name another', (dialect, err) => {
    const e = translateDbError(err, { dialect, server: 'srv', operation: 'open' });
    expect(e.message).toMatch(/create that database first, or name one that exists$/);
  });
});
