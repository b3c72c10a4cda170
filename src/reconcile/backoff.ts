import { AppvisorError } from '../errors.js';

/** Retry backoff as a caller writes it (all optional). */
export interface BackoffInput {
  /** Delay after the first failure. @default 1000 */
  baseMs?: number;
  /** No delay is longer than this. @default 300000 */
  maxMs?: number;
  /** Each further consecutive failure multiplies the delay by this. @default 2 */
  factor?: number;
  /**
   * Fraction (0 ≤ jitter < 1) by which a delay is shortened at random, so that keys which
   * failed together do not all retry in the same instant. Never lengthens a delay.
   * @default 0
   */
  jitter?: number;
}

/** Resolved backoff: every option set, frozen. */
export type BackoffOptions = Readonly<Required<BackoffInput>>;

export const BACKOFF_DEFAULTS: BackoffOptions = Object.freeze({
  baseMs: 1000,
  maxMs: 300_000,
  factor: 2,
  jitter: 0,
});

function invalid(detail: string): AppvisorError {
  return new AppvisorError('CONFIG_INVALID', { detail: `backoff: ${detail}` });
}

/** Applies defaults and checks the ranges; throws CONFIG_INVALID for a nonsensical setting. */
export function resolveBackoff(input: BackoffInput = {}): BackoffOptions {
  const options = { ...BACKOFF_DEFAULTS, ...stripUndefined(input) };
  const { baseMs, maxMs, factor, jitter } = options;
  if (!Number.isFinite(baseMs) || baseMs < 0) throw invalid(`baseMs must be a number ≥ 0, got ${baseMs}`);
  if (!Number.isFinite(maxMs) || maxMs < baseMs) {
    throw invalid(`maxMs must be a number ≥ baseMs (${baseMs}), got ${maxMs}`);
  }
  if (!Number.isFinite(factor) || factor < 1) throw invalid(`factor must be a number ≥ 1, got ${factor}`);
  if (!Number.isFinite(jitter) || jitter < 0 || jitter >= 1) {
    throw invalid(`jitter must be a number with 0 ≤ jitter < 1, got ${jitter}`);
  }
  return Object.freeze(options);
}

function stripUndefined(input: BackoffInput): BackoffInput {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined));
}

/**
 * The delay before the next attempt after `failures` consecutive failures (1 = the first):
 * `baseMs · factor^(failures-1)`, capped at `maxMs`, then shortened by up to `jitter`.
 * Pure apart from `random`, which tests can replace.
 */
export function backoffDelay(
  failures: number,
  options: BackoffOptions = BACKOFF_DEFAULTS,
  random: () => number = Math.random,
): number {
  const n = Number.isFinite(failures) ? Math.max(1, Math.floor(failures)) : 1;
  // factor ** large n is Infinity, which the cap absorbs.
  const capped = Math.min(options.maxMs, options.baseMs * options.factor ** (n - 1));
  const jittered = options.jitter === 0 ? capped : capped * (1 - options.jitter * random());
  return Math.round(jittered);
}

/** Consecutive failures per key; the delay grows with each failure and starts over after reset. */
export class KeyedBackoff {
  readonly options: BackoffOptions;
  readonly #random: () => number;
  readonly #failures = new Map<string, number>();

  constructor(input: BackoffInput = {}, random: () => number = Math.random) {
    this.options = resolveBackoff(input);
    this.#random = random;
  }

  /** Records one more failure of `key` and returns how long to wait before retrying it. */
  fail(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    return backoffDelay(failures, this.options, this.#random);
  }

  /** Forgets the failures of `key` (after a success, or when retrying cannot help). */
  reset(key: string): void {
    this.#failures.delete(key);
  }

  /** Consecutive failures of `key` so far. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Forgets every key. */
  clear(): void {
    this.#failures.clear();
  }
}
