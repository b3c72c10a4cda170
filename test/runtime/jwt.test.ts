import crypto from 'node:crypto';
import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { createJwtHelpers, InvalidTokenError, type JwtHelpers } from '../../src/runtime/jwt.js';

const secret = () => crypto.randomBytes(32).toString('base64url');
const MAIN_SECRET = secret();

function helpers(app: string, mode: 'own' | 'shared', isMain = false): JwtHelpers {
  return createJwtHelpers({ app, ownSecret: secret(), mode, mainSecret: MAIN_SECRET, isMain });
}

// Two own-secret apps, two shared-secret apps and the main app, all in one process.
const apps: Record<string, JwtHelpers> = {
  A: helpers('a', 'own'),
  B: helpers('b', 'own'),
  C: helpers('c', 'shared'),
  D: helpers('d', 'shared'),
  main: helpers('main-app-name-is-ignored', 'own', true),
};

// issuer -> the apps that accept its tokens (besides itself).
const alsoAccepted: Record<string, readonly string[]> = {
  A: [],
  B: [],
  C: [],
  D: [],
  main: ['C', 'D'],
};

const matrix = Object.keys(apps).flatMap((from) =>
  Object.keys(apps).map((to) => ({ from, to, accepted: from === to || alsoAccepted[from]!.includes(to) })),
);

describe('JWT helpers', () => {
  it.each(matrix)('a token from $from presented to $to: accepted=$accepted', ({ from, to, accepted }) => {
    const token = apps[from]!.sign({ sub: 'alice' });
    if (accepted) {
      const claims = apps[to]!.verify(token);
      expect(claims.sub).toBe('alice');
      expect(claims.aud).toBe(apps[from]!.audience);
    } else {
      expect(() => apps[to]!.verify(token)).toThrow(InvalidTokenError);
    }
  });

  it('puts the app name in aud, and "main" for the main app', () => {
    expect(jwt.decode(apps.A!.sign({ sub: 'x' }))).toMatchObject({ aud: 'a', sub: 'x' });
    expect(jwt.decode(apps.C!.sign({ sub: 'x' }))).toMatchObject({ aud: 'c' });
    expect(jwt.decode(apps.main!.sign({ sub: 'x' }))).toMatchObject({ aud: 'main' });
    expect(apps.C!.accepts).toEqual(['c', 'main']);
    expect(apps.A!.accepts).toEqual(['a']);
  });

  it('keeps custom claims but not a caller-supplied aud or exp', () => {
    const token = apps.C!.sign({ sub: 'x', role: 'admin', aud: 'd', exp: 1 });
    expect(() => apps.D!.verify(token)).toThrow(InvalidTokenError);
    const claims = apps.C!.verify(token);
    expect(claims).toMatchObject({ aud: 'c', role: 'admin' });
    expect(claims.exp).toBeGreaterThan(Date.now() / 1000);
  });

  it('refuses an expired token, saying why', () => {
    const a = createJwtHelpers({
      app: 'a',
      ownSecret: 's3cret',
      mode: 'own',
      mainSecret: MAIN_SECRET,
      isMain: false,
    });
    const expired = jwt.sign({ sub: 'x', aud: 'a', exp: Math.floor(Date.now() / 1000) - 10 }, 's3cret');
    const err = catchError(() => a.verify(expired));
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as InvalidTokenError).reason).toBe('expired');
  });

  const ownSecret = 'the-own-secret';
  const a = createJwtHelpers({ app: 'a', ownSecret, mode: 'own', mainSecret: MAIN_SECRET, isMain: false });
  const c = createJwtHelpers({ app: 'c', ownSecret, mode: 'shared', mainSecret: MAIN_SECRET, isMain: false });
  const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
  const unsigned = (payload: object) =>
    `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...payload, iat: inAnHour() - 3600, exp: inAnHour() })}.`;

  it.each([
    { name: 'alg none', to: a, token: () => unsigned({ sub: 'x', aud: 'a' }) },
    {
      name: 'HS512 with the right secret',
      to: a,
      token: () => jwt.sign({ sub: 'x', aud: 'a' }, ownSecret, { algorithm: 'HS512', expiresIn: 60 }),
    },
    {
      name: 'HS384 with the main secret, to a shared app',
      to: c,
      token: () => jwt.sign({ sub: 'x', aud: 'c' }, MAIN_SECRET, { algorithm: 'HS384', expiresIn: 60 }),
    },
    {
      name: 'own app, token signed with the main secret and its own aud',
      to: a,
      token: () => jwt.sign({ sub: 'x', aud: 'a' }, MAIN_SECRET, { expiresIn: 60 }),
    },
    {
      name: 'shared app, token with its aud signed with its unused own secret',
      to: c,
      token: () => jwt.sign({ sub: 'x', aud: 'c' }, ownSecret, { expiresIn: 60 }),
    },
    {
      name: 'an aud array naming the app and another',
      to: c,
      token: () => jwt.sign({ sub: 'x', aud: ['d', 'c'] }, MAIN_SECRET, { expiresIn: 60 }),
    },
    { name: 'no aud', to: a, token: () => jwt.sign({ sub: 'x' }, ownSecret, { expiresIn: 60 }) },
    { name: 'no sub', to: a, token: () => jwt.sign({ aud: 'a' }, ownSecret, { expiresIn: 60 }) },
    { name: 'no exp', to: a, token: () => jwt.sign({ sub: 'x', aud: 'a' }, ownSecret) },
    { name: 'tampered payload', to: a, token: () => tamper(a.sign({ sub: 'x' }), { sub: 'admin' }) },
    { name: 'tampered aud', to: c, token: () => tamper(apps.D!.sign({ sub: 'x' }), { aud: 'c' }) },
    { name: 'truncated signature', to: a, token: () => a.sign({ sub: 'x' }).slice(0, -3) },
    { name: 'garbage', to: a, token: () => 'not.a.token' },
    { name: 'empty', to: a, token: () => '' },
  ])('refuses $name', ({ to, token }) => {
    const err = catchError(() => to.verify(token()));
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as InvalidTokenError).reason).toBe('invalid');
  });

  it('accepts a well-formed token made by hand with the right secret and aud', () => {
    const token = jwt.sign({ sub: 'x', aud: 'a' }, ownSecret, { expiresIn: 60 });
    expect(a.verify(token).sub).toBe('x');
  });

  it('honours expiresIn', () => {
    const short = createJwtHelpers({
      app: 'a',
      ownSecret,
      mode: 'own',
      mainSecret: MAIN_SECRET,
      isMain: false,
      expiresIn: 5,
    });
    const claims = short.verify(short.sign({ sub: 'x' }));
    expect(claims.exp - claims.iat).toBe(5);
  });

  it('refuses to sign without a subject', () => {
    expect(() => a.sign({ sub: '' })).toThrow(TypeError);
  });

  it.each([
    { name: 'a sub-app named main', options: { app: 'main', mode: 'shared' as const, isMain: false } },
    {
      name: 'an empty own secret',
      options: { app: 'a', mode: 'own' as const, isMain: false, ownSecret: '' },
    },
    {
      name: 'an empty main secret',
      options: { app: 'c', mode: 'shared' as const, isMain: false, mainSecret: '' },
    },
  ])('refuses $name', ({ options }) => {
    expect(() => createJwtHelpers({ ownSecret: 'o', mainSecret: 'm', ...options })).toThrow(
      options.app === 'main' ? AppvisorError : TypeError,
    );
  });
});

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function tamper(token: string, changes: object): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
  return `${header}.${b64({ ...claims, ...changes })}.${signature}`;
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}
