import { describe, expect, it } from 'vitest';
import { generateSecret, SECRET_BYTES } from '../../src/providers/secrets.js';

describe('generateSecret', () => {
  it('returns 48 random bytes as base64url, different every time', () => {
    const secrets = Array.from({ length: 100 }, () => generateSecret());
    for (const s of secrets) {
      expect(s).toMatch(/^[A-Za-z0-9_-]{64}$/);
      expect(Buffer.from(s, 'base64url')).toHaveLength(SECRET_BYTES);
    }
    expect(new Set(secrets).size).toBe(secrets.length);
  });
});
