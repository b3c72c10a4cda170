/**
 * A state store written by an older appvisor (layout v1, before the data_version column) is
 * migrated in place on open, keeps its records, ids and secrets, and the read-only reader can
 * still read it before that happens.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TABLES } from '../../src/state/dialect.js';
import { SCHEMA_VERSION } from '../../src/state/migrations.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore } from '../../src/state/store.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';
import { minimalRecord } from './fixtures.js';

const dialects = await dialectsUnderTest();

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`state store layout upgrade on ${dialect}`, () => {
    let db: TestDatabase;

    beforeEach(async () => {
      db = await create();
    });
    afterEach(() => db.drop());

    it('migrates a v1 store to the current layout and keeps what it held', async () => {
      expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(2);
      const v2 = await openStateStore(db.url, { masterKey: TEST_MASTER_KEY });
      const fence = await v2.beginTerm();
      await v2.putRecord(minimalRecord('crm'), fence);
      const secret = await v2.ensureSecret('crm', 'the-secret-of-crm-0123456789', fence);
      const storeId = v2.storeId;
      await v2.close();
      // Turn it back into what appvisor with layout v1 left behind.
      for (const column of ['data_version', 'application', 'drop_at', 'operator_intent', 'version']) {
        await db.sql(`ALTER TABLE ${db.store(TABLES.apps)} DROP COLUMN ${column}`);
      }
      await db.sql(`ALTER TABLE ${db.store(TABLES.history)} DROP COLUMN by_token`);
      for (const column of ['kid', 'previous_secret', 'previous_kid', 'previous_until'])
        await db.sql(`ALTER TABLE ${db.store(TABLES.secrets)} DROP COLUMN ${column}`);
      await db.sql(`UPDATE ${db.store(TABLES.meta)} SET v = '1' WHERE k = 'schema_version'`);
      for (const table of [TABLES.lease, TABLES.replicas, TABLES.tokens])
        await db.sql(`DROP TABLE ${db.store(table)}`);

      const reader = await openStateReader(db.url);
      expect((await reader.getRecord('crm'))?.name).toBe('crm');
      // A v1 record reads as at version 1, as the migration numbers it.
      expect((await reader.getRecord('crm'))?.version).toBe(1);
      expect((await reader.getRecord('crm'))?.dataVersion).toBeUndefined();
      await reader.close();

      const store = await openStateStore(db.url, { masterKey: TEST_MASTER_KEY });
      try {
        expect(store.storeId).toBe(storeId);
        expect(await store.getSecret('crm')).toBe(secret);
        const fence = await store.beginTerm();
        expect(fence.term).toBe(1);
        await store.putRecord(
          {
            ...minimalRecord('crm'),
            version: 1,
            dataVersion: 2,
            application: 'crm-app',
            dropAt: '2026-01-02T00:00:00Z',
          },
          fence,
        );
        expect(await store.getRecord('crm')).toMatchObject({
          version: 2,
          dataVersion: 2,
          application: 'crm-app',
          dropAt: '2026-01-02T00:00:00Z',
        });
        const intent = { action: 'stop', by: 'alice', at: '2026-01-01T00:00:00.000Z' } as const;
        expect((await store.setIntent('crm', intent))?.intent).toEqual(intent);
        // A record write (a reconcile's) never undoes the operator's intent.
        await store.putRecord({ ...minimalRecord('crm'), version: 3, dataVersion: 2 }, fence);
        expect((await store.getRecord('crm'))?.intent).toEqual(intent);
        const meta = await db.sql(`SELECT v FROM ${db.store(TABLES.meta)} WHERE k = 'schema_version'`);
        expect(meta).toEqual([{ v: String(SCHEMA_VERSION) }]);
      } finally {
        await store.close();
      }
    });
  });
}
