/**
 * Durations as people write them in manifests and settings: `90s`, `15m`, `24h`, `7d`, `1h30m`,
 * `0s`. One grammar for every duration field, so `dropAfter: 1h` means the same as
 * `deletionGrace: 1h`.
 */

/** The JSON Schema pattern for a duration (kept in sync with {@link parseDuration}). */
export const DURATION_PATTERN = '^(\\d+(ms|s|m|h|d))+$';

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Milliseconds of `text`, or undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (!new RegExp(DURATION_PATTERN).test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(amount) * UNIT_MS[unit!]!;
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/**
 * Milliseconds of an `idleStop` (manifest or settings): a duration, or `off` / `0` for never
 * (0 ms); undefined when it is neither.
 */
export function parseIdleStop(value: string | number): number | undefined {
  if (value === 0 || value === 'off' || value === '0') return 0;
  return typeof value === 'string' ? parseDuration(value) : undefined;
}

/** A short human form of `ms` for messages: `24h`, `1h30m`, `45s`, `0s`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 && parts.length === 0) parts.push(`${rest}ms`);
  return parts.join('');
}
