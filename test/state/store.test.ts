import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { generateSecret } from '../../src/providers/secrets.js';
import { TABLES } from '../../src/state/dialect.js';
import { SCHEMA_VERSION } from '../../src/state/migrations.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore, type StateStoreOptions } from '../../src/state/store.js';
import type { Fence, StateReader, StateStore } from '../../src/state/types.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';
import { fullRecord, historyEntry, minimalRecord, stored } from './fixtures.js';

const dialects = await dialectsUnderTest();
const STORE_TABLES = Object.values(TABLES).sort();

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`state store on ${dialect}`, () => {
    let db: TestDatabase;
    const opened: (StateStore | StateReader)[] = [];

    const open = async (opts: StateStoreOptions = {}): Promise<StateStore> => {
      const store = await openStateStore(db.url, { masterKey: TEST_MASTER_KEY, ...opts });
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
      // The lease row, free, at term 0: the term fences every reconcile write.
      const lease = await db.sql(`SELECT name, holder, term FROM ${db.store(TABLES.lease)}`);
      expect(lease.map((r) => ({ ...r, term: Number(r.term) }))).toEqual([
        { name: 'leader', holder: null, term: 0 },
      ]);
    });

    it('keeps its store id, records and secrets across reopening, migrating nothing twice', async () => {
      const first = await open();
      const fence = await first.beginTerm();
      await first.putRecord(fullRecord('crm'), fence);
      const secret = await first.ensureSecret('crm', generateSecret(), fence);
      await first.close();

      const second = await open();
      expect(second.storeId).toBe(first.storeId);
      expect(await second.currentTerm()).toBe(fence.term);
      expect(await second.getRecord('crm')).toEqual(stored(fullRecord('crm')));
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
      const fence = await store.beginTerm();
      expect(await store.putRecord(fullRecord('crm'), fence)).toEqual(stored(fullRecord('crm')));
      await store.putRecord(minimalRecord('support'), fence);

      expect(await store.getRecord('crm')).toEqual(stored(fullRecord('crm')));
      const minimal = await store.getRecord('support');
      expect(minimal).toEqual(stored(minimalRecord('support')));
      expect(minimal).not.toHaveProperty('lastError');
      expect(minimal).not.toHaveProperty('lastReconciledAt');
      expect(await store.getRecord('nope')).toBeUndefined();
    });

    it('replaces a record on put at the version read, lists records by name and deletes one', async () => {
      const store = await open();
      const fence = await store.beginTerm();
      for (const name of ['zeta', 'alpha', 'mid']) await store.putRecord(minimalRecord(name), fence);
      const changed = { ...stored(fullRecord('mid')), status: 'orphaned' as const, hasSecret: false };
      expect(await store.putRecord(changed, fence)).toEqual({ ...changed, version: 2 });

      expect((await store.listRecords()).map((r) => r.name)).toEqual(['alpha', 'mid', 'zeta']);
      expect(await store.getRecord('mid')).toEqual({ ...changed, version: 2 });

      await store.deleteRecord('alpha', 1, fence);
      await expect(store.deleteRecord('never-existed', 1, fence)).rejects.toMatchObject({
        code: 'STATE_CONFLICT',
      });
      expect((await store.listRecords()).map((r) => r.name)).toEqual(['mid', 'zeta']);
      expect(await store.getRecord('alpha')).toBeUndefined();
    });

    describe('fenced writes', () => {
      const snapshot = async (store: StateStore) => ({
        records: await store.listRecords(),
        secret: await store.getSecret('crm'),
        history: await store.listHistory('crm'),
      });

      it('refuse a record written from a stale read (STATE_CONFLICT) and change nothing', async () => {
        const store = await open();
        const fence = await store.beginTerm();
        const first = await store.putRecord(minimalRecord('crm'), fence);
        await store.putRecord({ ...first, status: 'running' }, fence);
        const before = await snapshot(store);

        const err = await store.putRecord({ ...first, status: 'error' }, fence).catch((e: unknown) => e);
        expect(err).toMatchObject({
          code: 'STATE_CONFLICT',
          retryable: true,
          params: { expected: 1, actual: 2 },
        });
        // A second create of the same app is a stale read too.
        await expect(store.putRecord(minimalRecord('crm'), fence)).rejects.toMatchObject({
          code: 'STATE_CONFLICT',
        });
        expect(await snapshot(store)).toEqual(before);
      });

      it('refuse every write under a term that is over (LOCK_LOST) and change nothing', async () => {
        const [store, other] = [await open(), await open()];
        const old: Fence = await store.beginTerm();
        const record = await store.putRecord(minimalRecord('crm'), old);
        await store.finishRun(undefined, historyEntry('crm', 1), old);
        // Another process took the lock: a new term.
        const current = await other.beginTerm();
        expect(current.term).toBe(old.term + 1);
        const before = await snapshot(store);

        const refused = [
          () => store.putRecord({ ...record, status: 'running' }, old),
          () => store.putRecord(minimalRecord('new-app'), old),
          () => store.deleteRecord('crm', record.version!, old),
          () => store.ensureSecret('crm', generateSecret(), old),
          () => store.finishRun(undefined, historyEntry('crm', 2), old),
        ];
        for (const write of refused) {
          const err = await write().catch((e: unknown) => e);
          expect(err).toMatchObject({ code: 'LOCK_LOST', retryable: true });
          expect((err as Error).message).toContain(`term ${old.term} is over`);
        }
        expect(await snapshot(store)).toEqual(before);
        // The new term writes.
        await other.putRecord({ ...record, status: 'running' }, current);
        expect(await store.getRecord('crm')).toMatchObject({ status: 'running', version: 2 });
      });

      it("record an operator's intent as a new version, so a reconcile's stale write cannot undo it", async () => {
        const store = await open();
        const fence = await store.beginTerm();
        const read = await store.putRecord(minimalRecord('crm'), fence);
        const intent = {
          action: 'stop' as const,
          by: 'admin token via test',
          at: '2026-01-01T00:00:00.000Z',
        };
        expect(await store.setIntent('crm', intent)).toEqual({ ...read, intent, version: 2 });
        await expect(store.putRecord({ ...read, status: 'running' }, fence)).rejects.toMatchObject({
          code: 'STATE_CONFLICT',
        });
        expect(await store.getRecord('crm')).toEqual({ ...read, intent, version: 2 });
        // The check runs on the record the intent is written on.
        await expect(
          store.setIntent('crm', intent, () => {
            throw new AppvisorError('APP_DISABLED', { app: 'crm' });
          }),
        ).rejects.toMatchObject({ code: 'APP_DISABLED' });
        expect(await store.setIntent('nope', intent)).toBeUndefined();
      });
    });

    it('writes the record and the history entry of a run together, or neither', async () => {
      const store = await open({ historyLimit: 2 });
      const fence = await store.beginTerm();
      const created = await store.finishRun(minimalRecord('crm'), historyEntry('crm', 1), fence);
      expect(created).toMatchObject({ name: 'crm', version: 1 });
      await store.finishRun(undefined, historyEntry('crm', 2), fence);
      const running = await store.finishRun(
        { ...created!, status: 'running' },
        historyEntry('crm', 3),
        fence,
      );
      expect(running?.version).toBe(2);
      expect((await store.listHistory('crm')).map((e) => e.reconcileId)).toEqual(['r3', 'r2']);
      const before = { record: await store.getRecord('crm'), history: await store.listHistory('crm') };
      // A stale record: its history entry does not land either.
      await expect(
        store.finishRun({ ...created!, status: 'error' }, historyEntry('crm', 4), fence),
      ).rejects.toMatchObject({ code: 'STATE_CONFLICT' });
      const next = await store.beginTerm();
      await expect(store.finishRun(running, historyEntry('crm', 5), fence)).rejects.toMatchObject({
        code: 'LOCK_LOST',
      });
      await expect(store.finishRun(undefined, historyEntry('crm', 6), fence)).rejects.toMatchObject({
        code: 'LOCK_LOST',
      });
      expect({ record: await store.getRecord('crm'), history: await store.listHistory('crm') }).toEqual(
        before,
      );
      await store.finishRun(running, historyEntry('crm', 7), next);
      expect((await store.listHistory('crm')).map((e) => e.reconcileId)).toEqual(['r7', 'r3']);
    });

    it('keeps every write of many runs at once, each app at its own version', async () => {
      const store = await open({ historyLimit: 3 });
      const fence = await store.beginTerm();
      const apps = Array.from({ length: 24 }, (_, i) => `app${i}`);
      await Promise.all(
        apps.map(async (name) => {
          let record = await store.putRecord(minimalRecord(name), fence);
          for (let n = 1; n <= 4; n += 1) {
            record = (await store.finishRun({ ...record, status: 'running' }, historyEntry(name, n), fence))!;
          }
        }),
      );
      const records = await store.listRecords();
      expect(records.map((r) => [r.name, r.version])).toEqual([...apps].sort().map((name) => [name, 5]));
      for (const name of apps) {
        expect((await store.listHistory(name)).map((e) => e.reconcileId)).toEqual(['r4', 'r3', 'r2']);
      }
    });

    it('keeps only the newest N history entries per app, newest first', async () => {
      const store = await open({ historyLimit: 3 });
      const fence = await store.beginTerm();
      for (let n = 1; n <= 5; n += 1)
        await store.finishRun(undefined, historyEntry('crm', n, n === 5), fence);
      for (let n = 1; n <= 2; n += 1) await store.finishRun(undefined, historyEntry('support', n), fence);

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
      const fence = await store.beginTerm();
      for (let n = 1; n <= 52; n += 1) await store.finishRun(undefined, historyEntry('crm', n), fence);
      const entries = await store.listHistory('crm', 100);
      expect(entries).toHaveLength(50);
      expect(entries.at(-1)?.reconcileId).toBe('r3');
    });

    it('never replaces a stored secret, and racing ensureSecret calls all get the same one', async () => {
      const [a, b] = [await open(), await open()];
      const candidates = Array.from({ length: 10 }, () => generateSecret());
      const results = await Promise.all(candidates.map((s, i) => (i % 2 ? a : b).ensureMainSecret(s)));

      expect(new Set(results).size).toBe(1);
      expect(candidates).toContain(results[0]);
      expect(await a.ensureMainSecret(generateSecret())).toBe(results[0]);
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
      await store.putRecord(minimalRecord('crm'), await store.beginTerm());
      await db.sql(`UPDATE ${db.store(TABLES.apps)} SET spec = ? WHERE name = ?`, ['{not json', 'crm']);

      const err = await store.getRecord('crm').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'STATE_STORE_FAILED', retryable: true });
      expect((err as Error).message).toMatch(/crm\.spec is not valid JSON/);
    });

    it('rejects calls after close with a clear error', async () => {
      const store = await openStateStore(db.url, { masterKey: TEST_MASTER_KEY });
      await store.close();
      await store.close();
      await expect(store.listRecords()).rejects.toMatchObject({ code: 'STATE_STORE_FAILED' });
    });

    describe('reader (for plan)', () => {
      it('reads what the store wrote, under the same store id', async () => {
        const store = await open({ historyLimit: 5 });
        const fence = await store.beginTerm();
        await store.putRecord(fullRecord('crm'), fence);
        const secret = await store.ensureSecret('crm', generateSecret(), fence);
        await store.finishRun(undefined, historyEntry('crm', 1), fence);

        const reader = await read();
        expect(reader.storeId).toBe(store.storeId);
        expect(reader.target).toBe(store.target);
        expect(await reader.listRecords()).toEqual([stored(fullRecord('crm'))]);
        expect(await reader.getRecord('crm')).toEqual(stored(fullRecord('crm')));
        // The reader has no master key: it sees that a secret exists, sealed, never the secret.
        expect(await reader.getSecret('crm')).toMatch(/^av1:/);
        expect(await reader.getSecret('crm')).not.toContain(secret);
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
