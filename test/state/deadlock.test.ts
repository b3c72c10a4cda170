import { describe, expect, it } from 'vitest';
import { retryingDeadlocks } from '../../src/state/deadlock.js';

/** A driver error as mysql2 (`sqlState`) or pg (`code`) raises it. */
const driverError = (fields: Record<string, string>): Error => Object.assign(new Error('driver'), fields);

describe('retryingDeadlocks', () => {
  it.each([
    ['MySQL deadlock victim', { code: 'ER_LOCK_DEADLOCK', sqlState: '40001' }],
    ['PostgreSQL deadlock', { code: '40P01' }],
    ['PostgreSQL serialization failure', { code: '40001' }],
  ])('runs a %s again until it goes through', async (_name, fields) => {
    let calls = 0;
    const result = await retryingDeadlocks(async () => {
      calls++;
      if (calls < 3) throw driverError(fields);
      return 'written';
    });
    expect(result).toBe('written');
    expect(calls).toBe(3);
  });

  it('gives up after five attempts, and never repeats any other failure', async () => {
    let calls = 0;
    const deadlock = driverError({ sqlState: '40001' });
    await expect(
      retryingDeadlocks(async () => {
        calls++;
        throw deadlock;
      }),
    ).rejects.toBe(deadlock);
    expect(calls).toBe(5);
    calls = 0;
    await expect(
      retryingDeadlocks(async () => {
        calls++;
        throw driverError({ code: '23505' });
      }),
    ).rejects.toThrow('driver');
    expect(calls).toBe(1);
  });
});
