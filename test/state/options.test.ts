/** Settings the store refuses before touching any database. */
import { describe, expect, it } from 'vitest';
import { mysqlLockName } from '../../src/dialects/mysql/lock.js';
import { advisoryLockKey } from '../../src/dialects/postgres/lock.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore } from '../../src/state/store.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';

describe('state store settings', () => {
  it.each([
    ['a MySQL URL without a database', 'mysql://root@127.0.0.1:1/', {}, /names no database/],
    [
      'a history limit of 0',
      'sqlite::memory:',
      { historyLimit: 0 },
      /historyLimit must be a positive integer/,
    ],
    ['a fractional history limit', 'sqlite::memory:', { historyLimit: 2.5 }, /historyLimit/],
  ])('refuses %s with CONFIG_INVALID', async (_name, url, opts, message) => {
    await expect(openStateStore(url, opts)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message });
  });

  it('refuses a MySQL URL without a database for reading too', async () => {
    await expect(openStateReader('mysql://root:pw@127.0.0.1:1/')).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.not.stringContaining(':pw@'),
    });
  });

  it('keeps an in-memory store working for the life of the handle', async () => {
    const store = await openStateStore('sqlite::memory:', { masterKey: TEST_MASTER_KEY });
    expect(await store.ensureMainSecret('a')).toBe('a');
    expect(await store.ensureMainSecret('b')).toBe('a');
    await store.close();
  });
});

describe('lock names', () => {
  it('derives a stable signed 64-bit PostgreSQL advisory key per namespace', () => {
    const key = BigInt(advisoryLockKey('appvisor:reconcile'));
    expect(advisoryLockKey('appvisor:reconcile')).toBe(key.toString());
    expect(key).toBe(BigInt.asIntN(64, key));
    expect(advisoryLockKey('appvisor:migrate')).not.toBe(key.toString());
  });

  it.each([
    ['appvisor', 'appvisor:reconcile:appvisor'],
    ['x'.repeat(64), expect.stringMatching(/^appvisor:reconcile:[0-9a-f]{45}$/)],
    [undefined, 'appvisor:reconcile:'],
  ])('names the MySQL lock for database %s within 64 characters', (database, expected) => {
    const name = mysqlLockName('appvisor:reconcile', database);
    expect(name).toEqual(expected);
    expect(name.length).toBeLessThanOrEqual(64);
  });
});
