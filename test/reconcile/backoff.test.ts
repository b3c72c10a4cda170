import { describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import {
  BACKOFF_DEFAULTS,
  type BackoffInput,
  backoffDelay,
  KeyedBackoff,
  resolveBackoff,
} from '../../src/reconcile/backoff.js';

describe('backoffDelay', () => {
  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
    [8, 128_000],
    [9, 256_000],
    [10, 300_000],
    [11, 300_000],
    [5000, 300_000],
    [0, 1000],
    [-3, 1000],
    [Number.NaN, 1000],
  ])('with the defaults, failure %d waits %d ms (1 s doubling to 5 min)', (failures, expected) => {
    expect(backoffDelay(failures)).toBe(expected);
  });

  it.each<[BackoffInput, number, number]>([
    [{ baseMs: 100, factor: 1.5 }, 3, 225],
    [{ baseMs: 100, factor: 1 }, 50, 100],
    [{ baseMs: 50, maxMs: 120 }, 3, 120],
    [{ baseMs: 0 }, 7, 0],
  ])('with %o, failure %d waits %d ms', (input, failures, expected) => {
    expect(backoffDelay(failures, resolveBackoff(input))).toBe(expected);
  });

  it.each([
    [0, 8000],
    [0.5, 7200],
    [0.999_999, 6400],
  ])('jitter 0.2 with random() = %d shortens 8 s to %d ms, never lengthens it', (random, expected) => {
    expect(backoffDelay(4, resolveBackoff({ jitter: 0.2 }), () => random)).toBe(expected);
  });

  it('jitter never goes past the cap', () => {
    expect(backoffDelay(30, resolveBackoff({ jitter: 0.5 }), () => 0)).toBe(300_000);
  });
});

describe('resolveBackoff', () => {
  it('applies the defaults and freezes the result', () => {
    const options = resolveBackoff({ baseMs: 10, maxMs: undefined });
    expect(options).toEqual({ ...BACKOFF_DEFAULTS, baseMs: 10 });
    expect(Object.isFrozen(options)).toBe(true);
  });

  it.each<[BackoffInput, RegExp]>([
    [{ baseMs: -1 }, /baseMs must be a number ≥ 0, got -1/],
    [{ baseMs: Number.NaN }, /baseMs/],
    [{ baseMs: 1000, maxMs: 999 }, /maxMs must be a number ≥ baseMs \(1000\), got 999/],
    [{ maxMs: Number.POSITIVE_INFINITY }, /maxMs/],
    [{ factor: 0.5 }, /factor must be a number ≥ 1/],
    [{ jitter: 1 }, /jitter must be a number with 0 ≤ jitter < 1, got 1/],
    [{ jitter: -0.1 }, /jitter/],
  ])('rejects %o with CONFIG_INVALID', (input, message) => {
    let thrown: unknown;
    try {
      resolveBackoff(input);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(AppvisorError);
    expect((thrown as AppvisorError).code).toBe('CONFIG_INVALID');
    expect((thrown as AppvisorError).message).toMatch(message);
  });
});

describe('KeyedBackoff', () => {
  it('counts consecutive failures per key and starts over after reset', () => {
    const backoff = new KeyedBackoff({ baseMs: 10, maxMs: 1000 });
    expect([backoff.fail('a'), backoff.fail('a'), backoff.fail('a')]).toEqual([10, 20, 40]);
    expect(backoff.fail('b')).toBe(10);
    expect(backoff.failures('a')).toBe(3);
    backoff.reset('a');
    expect(backoff.failures('a')).toBe(0);
    expect(backoff.fail('a')).toBe(10);
    expect(backoff.fail('b')).toBe(20);
    backoff.clear();
    expect(backoff.failures('b')).toBe(0);
  });

  it('uses the injected random source for jitter', () => {
    const backoff = new KeyedBackoff({ baseMs: 1000, jitter: 0.5 }, () => 1);
    expect(backoff.fail('a')).toBe(500);
  });
});
