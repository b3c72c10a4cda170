/**
 * Key ids in JWT headers and the previous secret's grace (SPEC §8.4), on the helpers alone.
 */
import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { createJwtHelpers, JwtKeyRing, kidOf, secretSetOf } from '../../src/runtime/jwt.js';

const OLD = 'old-secret-0123456789abcdef0123456789abcdef';
const NEW = 'new-secret-0123456789abcdef0123456789abcdef';
const OTHER = 'other-app-secret-0123456789abcdef0123456789';

function helpers(ring: JwtKeyRing, now: () => number = Date.now, app = 'crm') {
  return createJwtHelpers({
    app,
    ownSecret: ring,
    mainSecret: 'main-secret-unused-here',
    mode: 'own',
    isMain: false,
    now,
  });
}

function rotated(graceUntil: number): JwtKeyRing {
  return new JwtKeyRing({
    current: { kid: kidOf(NEW), secret: NEW },
    previous: { kid: kidOf(OLD), secret: OLD, until: new Date(graceUntil).toISOString() },
  });
}

describe('JWT key ids and rotation', () => {
  it('signs with the current secret and names its kid in the header', () => {
    const token = helpers(new JwtKeyRing(secretSetOf(OLD))).sign({ sub: 'alice' });
    expect(jwt.decode(token, { complete: true })?.header.kid).toBe(kidOf(OLD));
    expect(() => jwt.verify(token, OLD)).not.toThrow();
  });

  it('verifies the previous secret until the grace ends, by kid, then refuses it', () => {
    const oldToken = helpers(new JwtKeyRing(secretSetOf(OLD))).sign({ sub: 'alice' });
    let now = Date.now();
    const h = helpers(rotated(now + 2_000), () => now);
    expect(h.verify(oldToken).sub).toBe('alice');
    const newToken = h.sign({ sub: 'alice' });
    expect(jwt.decode(newToken, { complete: true })?.header.kid).toBe(kidOf(NEW));
    now += 2_001;
    expect(() => h.verify(oldToken)).toThrow(/invalid token/);
    expect(h.verify(newToken).sub).toBe('alice');
  });

  it('a token without a kid (issued before key ids) verifies against the current, then the previous during the grace', () => {
    const legacy = (secret: string) =>
      jwt.sign({ sub: 'bob', aud: 'crm' }, secret, { algorithm: 'HS256', expiresIn: '1h' });
    let now = Date.now();
    const h = helpers(rotated(now + 1_000), () => now);
    expect(h.verify(legacy(NEW)).sub).toBe('bob');
    expect(h.verify(legacy(OLD)).sub).toBe('bob');
    now += 1_001;
    expect(() => h.verify(legacy(OLD))).toThrow(/invalid token/);
  });

  it("never opens a token of another app's secret, nor one whose kid names no key", () => {
    const h = helpers(rotated(Date.now() + 60_000));
    const other = helpers(new JwtKeyRing(secretSetOf(OTHER))).sign({ sub: 'alice' });
    expect(() => h.verify(other)).toThrow(/invalid token/);
    const forged = jwt.sign({ sub: 'alice', aud: 'crm' }, OLD, {
      algorithm: 'HS256',
      keyid: 'ffffffff',
      expiresIn: '1h',
    });
    expect(() => h.verify(forged)).toThrow(/invalid token/);
  });

  it('a ring replaced under running helpers takes effect at once (no restart)', () => {
    const ring = new JwtKeyRing(secretSetOf(OLD));
    const h = helpers(ring);
    const before = h.sign({ sub: 'alice' });
    ring.set({ current: { kid: kidOf(NEW), secret: NEW } });
    expect(jwt.decode(h.sign({ sub: 'alice' }), { complete: true })?.header.kid).toBe(kidOf(NEW));
    expect(() => h.verify(before)).toThrow(/invalid token/);
  });

  it('an expired token is expired, whichever key signed it', () => {
    const h = helpers(rotated(Date.now() + 60_000));
    const expired = jwt.sign({ sub: 'a', aud: 'crm', exp: Math.floor(Date.now() / 1000) - 10 }, OLD, {
      algorithm: 'HS256',
      keyid: kidOf(OLD),
    });
    expect(() => h.verify(expired)).toThrow(expect.objectContaining({ reason: 'expired' }));
  });
});
