import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { generateSecret } from '../../src/providers/secrets.js';
import { TABLES } from '../../src/state/dialect.js';
import { SCHEMA_VERSION } from '../../src/state/migrations.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore, type StateStoreOptions } from '../../src/state/store.js';
import type { StateReader, StateStore } from '../../src/state/types.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';
import { fullRecord, historyEntry, minimalRecord } from './fixtures.js';

const dialects = await dialectsUnderTest();
const STORE_TABLES = Object.values(TABLES).sort();

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`state store on ${dialect}`, () => {
    let db: TestDatabase;
    const opened: (StateStore | StateReader)[] = [];

    const open = async (opts: StateStoreOptions = {}): Promise<StateStore> => {
      const store = await openStateStore(db.url, opts);
      opened.push(store);
      return store;
    };
    const read = async (): Promise<StateReader> => {
      const reader = await openStateReader(db.url);
      opened.push(reader);
      return reader;
    };

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await db.drop();
    });

    it('creates its tables in an empty database and records the layout version and a store id', async () => {
      expect(await db.tables()).toEqual([]);
      const store = await open();
      expect((await db.tables()).sort()).toEqual(STORE_TABLES);
      expect(store.storeId).toMatch(/^[0-9a-f]{16}$/);
      const meta = await db.sql(`SELECT k, v FROM ${db.store(TABLES.meta)} ORDER BY k`);
      expect(meta).toEqual([
        { k: 'schema_version', v: String(SCHEMA_VERSION) },
        { k: 'store_id', v: store.storeId },
      ]);
    });

    it('keeps its store id, records and secrets across reopening, migrating nothing twice', async () => {
      const first = await open();
      await first.putRecord(fullRecord('crm'));
      const secret = await first.ensureSecret('crm', generateSecret());
      await first.close();

      const second = await open();
      expect(second.storeId).toBe(first.storeId);
      expect(await second.getRecord('crm')).toEqual(fullRecord('crm'));
      expect(await second.getSecret('crm')).toBe(secret);
      expect((await db.tables()).sort()).toEqual(STORE_TABLES);
    });

    it('agrees on one store id when several processes open a new store at once', async () => {
      const stores = await Promise.all(Array.from({ length: 4 }, () => open()));
      expect(new Set(stores.map((s) => s.storeId)).size).toBe(1);
      expect(await db.sql(`SELECT k FROM ${db.store(TABLES.meta)} WHERE k = 'store_id'`)).toHaveLength(1);
    });

    it('round-trips records with JSON fields and with optional fields left out', async () => {
      const store = await open();
      await store.putRecord(fullRecord('crm'));
      await store.putRecord(minimalRecord('support'));

      expect(await store.getRecord('crm')).toEqual(fullRecord('crm'));
      const minimal = await store.getRecord('support');
      expect(minimal).toEqual(minimalRecord('support'));
      expect(minimal).not.toHaveProperty('lastError');
      expect(minimal).not.toHaveProperty('lastReconciledAt');
      expect(await store.getRecord('nope')).toBeUndefined();
    });

    it('replaces a record on put, lists records by name and deletes one', async () => {
      const store = await open();
      for (const name of ['zeta', 'alpha', 'mid']) await store.putRecord(minimalRecord(name));
      const changed = { ...fullRecord('mid'), status: 'orphaned' as const, hasSecret: false };
      await store.putRecord(changed);

      expect((await store.listRecords()).map((r) => r.name)).toEqual(['alpha', 'mid', 'zeta']);
      expect(await store.getRecord('mid')).toEqual(changed);

      await store.deleteRecord('alpha');
      await store.deleteRecord('never-existed');
      expect((await store.listRecords()).map((r) => r.name)).toEqual(['mid', 'zeta']);
      expect(await store.getRecord('alpha')).toBeUndefined();
    });

    it('keeps only the newest N history entries per app, newest first', async () => {
      const store = await open({ historyLimit: 3 });
      for (let n = 1; n <= 5; n += 1) await store.appendHistory(historyEntry('crm', n, n === 5));
      for (let n = 1; n <= 2; n += 1) await store.appendHistory(historyEntry('support', n));

      const crm = await store.listHistory('crm');
      expect(crm.map((e) => e.reconcileId)).toEqual(['r5', 'r4', 'r3']);
      expect(crm[0]).toEqual(historyEntry('crm', 5, true));
      expect(crm[1]).not.toHaveProperty('error');
      expect((await store.listHistory('support')).map((e) => e.reconcileId)).toEqual(['r2', 'r1']);
      expect((await store.listHistory('crm', 1)).map((e) => e.reconcileId)).toEqual(['r5']);
      expect(await db.sql(`SELECT id FROM ${db.store(TABLES.history)}`)).toHaveLength(5);
      expect(await store.listHistory('nobody')).toEqual([]);
    });

    it('defaults to 50 history entries per app', async () => {
      const store = await open();
      for (let n = 1; n <= 52; n += 1) await store.appendHistory(historyEntry('crm', n));
      const entries = await store.listHistory('crm', 100);
      expect(entries).toHaveLength(50);
      expect(entries.at(-1)?.reconcileId).toBe('r3');
    });

    it('never replaces a stored secret, and racing ensureSecret calls all get the same one', async () => {
      const [a, b] = [await open(), await open()];
      const candidates = Array.from({ length: 10 }, () => generateSecret());
      const results = await Promise.all(candidates.map((s, i) => (i % 2 ? a : b).ensureSecret('main', s)));

      expect(new Set(results).size).toBe(1);
      expect(candidates).toContain(results[0]);
      expect(await a.ensureSecret('main', generateSecret())).toBe(results[0]);
      expect(await b.getSecret('main')).toBe(results[0]);
      expect(await a.getSecret('crm')).toBeUndefined();
    });

    it('refuses a store written by a newer appvisor instead of touching it', async () => {
      await (await open()).close();
      await db.sql(`UPDATE ${db.store(TABLES.meta)} SET v = ? WHERE k = ?`, [
        String(SCHEMA_VERSION + 1),
        'schema_version',
      ]);

      for (const attempt of [() => open(), () => read()]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AppvisorError);
        expect(err).toMatchObject({ code: 'STATE_STORE_FAILED', retryable: false });
        expect((err as Error).message).toContain(`version ${SCHEMA_VERSION + 1}`);
      }
    });

    it('reports a corrupt record as STATE_STORE_FAILED naming the app', async () => {
      const store = await open();
      await store.putRecord(minimalRecord('crm'));
      await db.sql(`UPDATE ${db.store(TABLES.apps)} SET spec = ? WHERE name = ?`, ['{not json', 'crm']);

      const err = await store.getRecord('crm').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'STATE_STORE_FAILED', retryable: true });
      expect((err as Error).message).toMatch(/crm\.spec is not valid JSON/);
    });

    it('rejects calls after close with a clear error', async () => {
      const store = await openStateStore(db.url);
      await store.close();
      await store.close();
      await expect(store.listRecords()).rejects.toMatchObject({ code: 'STATE_STORE_FAILED' });
    });

    describe('reader (for plan)', () => {
      it('reads what the store wrote, under the same store id', async () => {
        const store = await open({ historyLimit: 5 });
        await store.putRecord(fullRecord('crm'));
        const secret = await store.ensureSecret('crm', generateSecret());
        await store.appendHistory(historyEntry('crm', 1));

        const reader = await read();
        expect(reader.storeId).toBe(store.storeId);
        expect(reader.target).toBe(store.target);
        expect(await reader.listRecords()).toEqual([fullRecord('crm')]);
        expect(await reader.getRecord('crm')).toEqual(fullRecord('crm'));
        expect(await reader.getSecret('crm')).toBe(secret);
        expect(await reader.listHistory('crm')).toEqual([historyEntry('crm', 1)]);
      });

      it('reads an empty database as an empty store and creates nothing', async () => {
        const reader = await read();
        expect(reader.storeId).toBeUndefined();
        expect(await reader.listRecords()).toEqual([]);
        expect(await reader.getRecord('crm')).toBeUndefined();
        expect(await reader.getSecret('main')).toBeUndefined();
        expect(await reader.listHistory('crm')).toEqual([]);
        await reader.close();
        expect(await db.tables()).toEqual([]);
      });
    });
  });
}
