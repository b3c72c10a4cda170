/**
 * The token and history parts of the state store that named tokens rest on, on SQLite,
 * PostgreSQL and MariaDB: revocation as a tombstone, the name rules of `createNamedToken`, and
 * a history entry's `by` (the token's name) written through `finishRun` and read back.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNamedToken, listNamedTokens, revokeNamedToken } from '../../src/admin/token.js';
import { AppvisorError } from '../../src/errors.js';
import { openStateStore } from '../../src/state/store.js';
import { tokenHash } from '../../src/state/tokens.js';
import type { HistoryEntry, StateStore } from '../../src/state/types.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';
import { MemoryStateStore } from '../support/memory-store.js';

const dialects = await dialectsUnderTest();

function entry(app: string, reconcileId: string, by?: string): HistoryEntry {
  return {
    app,
    reconcileId,
    at: new Date().toISOString(),
    outcome: 'updated',
    steps: [{ action: 'stop', detail: 'stopped by an operator', result: 'updated' }],
    durationMs: 3,
    ...(by !== undefined ? { by } : {}),
  };
}

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`named admin tokens and history by on ${dialect}`, () => {
    let db: TestDatabase;
    let store: StateStore;

    beforeEach(async () => {
      db = await create();
      store = await openStateStore(db.url, { maxConnections: 2 });
    });
    afterEach(async () => {
      await store.close();
      await db.drop();
    });

    it('makes a token whose hash alone is stored, and lists it without the hash', async () => {
      const { token, view } = await createNamedToken(store, 'ci-deploy', 'operate');
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(view).toEqual({ name: 'ci-deploy', scope: 'operate', createdAt: expect.any(String) });
      const rows = await db.sql(`SELECT * FROM ${db.store('appvisor_tokens')}`);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.hash).toBe(tokenHash(token));
      expect(JSON.stringify(rows)).not.toContain(token);
      expect(await listNamedTokens(store)).toEqual([view]);
      expect(JSON.stringify(await listNamedTokens(store))).not.toContain('hash');
    });

    it('revokes with a tombstone: kept, listed as revoked, its first time kept, its use no longer noted', async () => {
      const { token } = await createNamedToken(store, 'dashboard', 'read');
      const first = await revokeNamedToken(store, 'dashboard');
      expect(first.already).toBe(false);
      expect(first.view.revokedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
      const again = await revokeNamedToken(store, 'dashboard');
      expect(again).toEqual({ view: first.view, already: true });
      expect(await listNamedTokens(store)).toEqual([first.view]);
      // A revoked token's use is not noted (the check refuses it anyway).
      const found = await store.findAdminToken(tokenHash(token));
      expect(found?.revokedAt).toBe(first.view.revokedAt);
      expect(found?.lastUsedAt).toBeUndefined();
      const [row] = await db.sql(`SELECT revoked_at, last_used_at FROM ${db.store('appvisor_tokens')}`);
      expect(row).toEqual({ revoked_at: first.view.revokedAt, last_used_at: null });
    });

    it('refuses a name in use, a revoked name, a bad name or scope, and revoking an unknown name', async () => {
      await createNamedToken(store, 'ci', 'admin');
      await expect(createNamedToken(store, 'ci', 'read')).rejects.toMatchObject({
        code: 'TOKEN_EXISTS',
        status: 409,
        message: expect.stringMatching(/a token of that name exists \(scope admin.*appvisor token revoke ci/),
      });
      await revokeNamedToken(store, 'ci');
      await expect(createNamedToken(store, 'ci', 'read')).rejects.toMatchObject({
        code: 'TOKEN_EXISTS',
        message: expect.stringMatching(/revoked at .*not reused/),
      });
      for (const name of ['', 'CI', 'ci deploy', '-ci', 'ci-', 'a'.repeat(41), 'APPVISOR_ADMIN_TOKEN', 'é']) {
        const err = await createNamedToken(store, name, 'read').catch((e: unknown) => e);
        expect(err, name).toBeInstanceOf(AppvisorError);
        expect(err).toMatchObject({ code: 'TOKEN_INVALID', status: 400 });
      }
      await expect(createNamedToken(store, 'ok', 'root' as never)).rejects.toMatchObject({
        code: 'TOKEN_INVALID',
        message: expect.stringContaining('read, operate, admin'),
      });
      await expect(revokeNamedToken(store, 'nobody')).rejects.toMatchObject({
        code: 'TOKEN_NOT_FOUND',
        status: 404,
      });
      // Nothing of the refused ones was stored.
      expect((await listNamedTokens(store)).map((t) => t.name)).toEqual(['ci']);
    });

    it("stores a history entry's by through finishRun and reads it back; an entry without by has none", async () => {
      const fence = await store.beginTerm();
      await store.finishRun(undefined, entry('crm', 'r1'), fence);
      await store.finishRun(undefined, entry('crm', 'r2', 'token ci via appvisor-cli alice@box'), fence);
      const history = await store.listHistory('crm');
      expect(history.map((h) => [h.reconcileId, h.by])).toEqual([
        ['r2', 'token ci via appvisor-cli alice@box'],
        ['r1', undefined],
      ]);
      expect(history[1]).not.toHaveProperty('by');
      const rows = await db.sql(`SELECT by_token FROM ${db.store('appvisor_history')} ORDER BY id`);
      expect(rows).toEqual([{ by_token: null }, { by_token: 'token ci via appvisor-cli alice@box' }]);
    });
  });
}

describe('named admin tokens on the memory store used by the unit tests', () => {
  it('revokes as the real stores do: a tombstone, its first time kept, its use not noted', async () => {
    const store = new MemoryStateStore();
    const { token } = await createNamedToken(store, 'dashboard', 'read');
    expect(await store.revokeAdminToken('nobody')).toBeUndefined();
    const first = await revokeNamedToken(store, 'dashboard');
    expect(await revokeNamedToken(store, 'dashboard')).toEqual({ view: first.view, already: true });
    expect((await store.findAdminToken(tokenHash(token)))?.lastUsedAt).toBeUndefined();
    await expect(createNamedToken(store, 'dashboard', 'read')).rejects.toMatchObject({
      code: 'TOKEN_EXISTS',
    });
  });
});
