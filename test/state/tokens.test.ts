import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TABLES } from '../../src/state/dialect.js';
import { openStateStore } from '../../src/state/store.js';
import { tokenHash } from '../../src/state/tokens.js';
import type { AdminTokenRecord, StateStore } from '../../src/state/types.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';

const dialects = await dialectsUnderTest();

function tokenRecord(name: string, token: string, patch: Partial<AdminTokenRecord> = {}): AdminTokenRecord {
  return { name, hash: tokenHash(token), scope: 'admin', createdAt: new Date().toISOString(), ...patch };
}

describe('tokenHash', () => {
  it('is the SHA-256 of the token in lower-case hex', () => {
    // echo -n abc | sha256sum
    expect(tokenHash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`admin tokens in the state store on ${dialect}`, () => {
    let db: TestDatabase;
    const opened: StateStore[] = [];
    const open = async (): Promise<StateStore> => {
      const store = await openStateStore(db.url, { maxConnections: 2 });
      opened.push(store);
      return store;
    };

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await db.drop();
    });

    it('keeps the first token of a name: two stores inserting at once agree on one', async () => {
      const [a, b] = [await open(), await open()];
      const mine = tokenRecord('default', randomBytes(32).toString('base64url'));
      const theirs = tokenRecord('default', randomBytes(32).toString('base64url'));
      const [fromA, fromB] = await Promise.all([a.ensureAdminToken(mine), b.ensureAdminToken(theirs)]);
      expect(fromA).toEqual(fromB);
      expect([mine.hash, theirs.hash]).toContain(fromA.hash);
      expect(await a.listAdminTokens()).toEqual([fromA]);
      // A later insert of another value changes nothing.
      expect(await b.ensureAdminToken(tokenRecord('default', 'a-third-token-0123456789'))).toEqual(fromA);
    });

    it('lists tokens by name, finds one by its hash and deletes it by name', async () => {
      const store = await open();
      const ci = tokenRecord('ci', 'token-of-the-ci-0123456789', { scope: 'operate' });
      const ro = tokenRecord('dashboard', 'token-of-the-dashboard-0123', { scope: 'read' });
      await store.ensureAdminToken(ro);
      await store.ensureAdminToken(ci);
      expect(await store.listAdminTokens()).toEqual([ci, ro]);
      expect(await store.findAdminToken(ci.hash)).toMatchObject({ name: 'ci', scope: 'operate' });
      expect(await store.findAdminToken(tokenHash('not-a-stored-token-01234'))).toBeUndefined();

      expect(await store.deleteAdminToken('ci')).toBe(true);
      expect(await store.deleteAdminToken('ci')).toBe(false);
      expect(await store.findAdminToken(ci.hash)).toBeUndefined();
      expect((await store.listAdminTokens()).map((t) => t.name)).toEqual(['dashboard']);
    });

    it('notes a use in lastUsedAt at most once a minute', async () => {
      const store = await open();
      const row = tokenRecord('ci', 'token-of-the-ci-0123456789');
      await store.ensureAdminToken(row);
      expect((await store.listAdminTokens())[0]!.lastUsedAt).toBeUndefined();

      const before = Date.now();
      const first = (await store.findAdminToken(row.hash))!.lastUsedAt!;
      expect(Date.parse(first)).toBeGreaterThanOrEqual(before - 1);
      expect((await store.findAdminToken(row.hash))!.lastUsedAt).toBe(first);

      const longAgo = new Date(Date.now() - 61_000).toISOString();
      await db.sql(`UPDATE ${db.store(TABLES.tokens)} SET last_used_at = ? WHERE name = ?`, [longAgo, 'ci']);
      const again = (await store.findAdminToken(row.hash))!.lastUsedAt!;
      expect(again > longAgo).toBe(true);
    });

    it('holds the hash only, never the token', async () => {
      const store = await open();
      const token = randomBytes(32).toString('base64url');
      await store.ensureAdminToken(tokenRecord('default', token));
      await store.findAdminToken(tokenHash(token));
      const rows = await db.sql(`SELECT * FROM ${db.store(TABLES.tokens)}`);
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(token);
      expect(JSON.stringify(rows)).toContain(tokenHash(token));
    });
  });
}
