import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BearerCheck, createBearerCheck } from '../../src/admin/auth.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { TABLES } from '../../src/state/dialect.js';
import { openStateStore } from '../../src/state/store.js';
import { tokenHash } from '../../src/state/tokens.js';
import type { StateStore } from '../../src/state/types.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';
import { MemoryLog } from './fakes.js';

const TOKEN = 'correct-horse-battery-staple-0123';
const withHeader = (authorization?: string): IncomingMessage =>
  ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;
const bearer = (token: string): IncomingMessage => withHeader(`Bearer ${token}`);
const newToken = (): string => randomBytes(32).toString('base64url');
const stored = (name: string, token: string) => ({
  name,
  hash: tokenHash(token),
  scope: 'operate' as const,
  createdAt: new Date().toISOString(),
});

describe('createBearerCheck with the environment token', () => {
  const check = createBearerCheck({ token: TOKEN });
  it.each([
    ['the token', `Bearer ${TOKEN}`, true],
    ['a lower-case scheme', `bearer ${TOKEN}`, true],
    ['extra blanks around the token', `Bearer   ${TOKEN} `, true],
    ['no header', undefined, false],
    ['an empty header', '', false],
    ['the token without a scheme', TOKEN, false],
    ['the Basic scheme', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`, false],
    ['Basic with the raw token', `Basic ${TOKEN}`, false],
    ['Bearer alone', 'Bearer', false],
    ['Bearer and a blank', 'Bearer ', false],
    ['a wrong token', 'Bearer wrong-token-wrong-token-00', false],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`, false],
    ['the token plus a character', `Bearer ${TOKEN}x`, false],
    ['two tokens', `Bearer ${TOKEN} ${TOKEN}`, false],
  ])('%s -> %s', async (_name, header, expected) => {
    expect((await check(withHeader(header))) !== undefined).toBe(expected);
  });

  it('names the caller APPVISOR_ADMIN_TOKEN, scope admin', async () => {
    expect(await check(bearer(TOKEN))).toEqual({ name: 'APPVISOR_ADMIN_TOKEN', scope: 'admin' });
  });
});

const dialects = await dialectsUnderTest();

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`createBearerCheck on a state store on ${dialect}`, () => {
    let db: TestDatabase;
    const opened: StateStore[] = [];
    const checks: BearerCheck[] = [];
    const open = async (url = db.url): Promise<StateStore> => {
      const store = await openStateStore(url, { maxConnections: 2 });
      opened.push(store);
      return store;
    };
    const checkOn = (store: StateStore, opts: { token?: string; log?: MemoryLog } = {}): BearerCheck => {
      const check = createBearerCheck({ ...opts, store, refreshMs: 200, missRefreshMs: 100 });
      checks.push(check);
      return check;
    };

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      for (const check of checks.splice(0)) check.close();
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await db.drop();
    });

    it('accepts a token stored through another store within the refresh time, and stops when it is deleted', async () => {
      const [a, b] = [await open(), await open()];
      const check = checkOn(b);
      const token = newToken();
      expect(await check(bearer(token))).toBeUndefined();

      await a.ensureAdminToken(stored('ci', token));
      await vi.waitFor(
        async () => expect(await check(bearer(token))).toEqual({ name: 'ci', scope: 'operate' }),
        {
          timeout: 5_000,
          interval: 50,
        },
      );
      expect(await check(bearer(newToken()))).toBeUndefined();

      await a.deleteAdminToken('ci');
      await vi.waitFor(async () => expect(await check(bearer(token))).toBeUndefined(), {
        timeout: 5_000,
        interval: 50,
      });
    });

    it('accepts a token stored just before the first request (the first read is awaited)', async () => {
      const store = await open();
      const token = newToken();
      await store.ensureAdminToken(stored('ci', token));
      expect(await checkOn(store)(bearer(token))).toMatchObject({ name: 'ci' });
    });

    it('accepts the environment token beside the stored ones', async () => {
      const store = await open();
      const token = newToken();
      await store.ensureAdminToken(stored('ci', token));
      const check = checkOn(store, { token: TOKEN });
      expect(await check(bearer(TOKEN))).toEqual({ name: 'APPVISOR_ADMIN_TOKEN', scope: 'admin' });
      expect(await check(bearer(token))).toMatchObject({ name: 'ci' });
      expect(await check(bearer(newToken()))).toBeUndefined();
    });

    it("notes a stored token's use in the store", async () => {
      const store = await open();
      const token = newToken();
      await store.ensureAdminToken(stored('ci', token));
      expect(await checkOn(store)(bearer(token))).toBeDefined();
      await vi.waitFor(async () => {
        const rows = await db.sql(`SELECT last_used_at FROM ${db.store(TABLES.tokens)}`);
        expect(rows[0]!.last_used_at).toEqual(expect.any(String));
      });
    });
  });
}

for (const { dialect, available, create } of dialects.filter((d) => d.dialect !== 'sqlite')) {
  describe.skipIf(!available)(`createBearerCheck through an outage of ${dialect}`, () => {
    let db: TestDatabase;
    let proxy: TcpProxy;
    let store: StateStore;
    let check: BearerCheck;

    beforeEach(async () => {
      db = await create();
      const { host, port } = parseDatabaseUrl(db.url);
      proxy = await startTcpProxy(host!, port!);
      store = await openStateStore(proxy.url(db.url), { maxConnections: 2 });
    });
    afterEach(async () => {
      check.close();
      proxy.restore();
      await store.close();
      await proxy.close();
      await db.drop();
    });

    it('keeps accepting the last tokens read while the store cannot be read, saying so once', async () => {
      const token = newToken();
      await store.ensureAdminToken(stored('ci', token));
      const log = new MemoryLog();
      check = createBearerCheck({ store, log, refreshMs: 100, missRefreshMs: 50 });
      expect(await check(bearer(token))).toMatchObject({ name: 'ci' });

      proxy.cut();
      // Unknown tokens make the check read again, and the timer does too: both fail.
      await vi.waitFor(
        async () => {
          expect(await check(bearer(newToken()))).toBeUndefined();
          expect(log.lines.some((l) => l.level === 'warn')).toBe(true);
        },
        { timeout: 10_000, interval: 100 },
      );
      await new Promise((r) => setTimeout(r, 300)); // a few more failed refreshes
      expect(await check(bearer(token))).toMatchObject({ name: 'ci' });
      expect(log.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
      expect(log.lines[0]!.msg).toContain('cannot read the admin tokens');

      proxy.restore();
      await vi.waitFor(() => expect(log.lines.some((l) => l.level === 'info')).toBe(true), {
        timeout: 10_000,
        interval: 100,
      });
      expect(await check(bearer(token))).toMatchObject({ name: 'ci' });
    });
  });
}
