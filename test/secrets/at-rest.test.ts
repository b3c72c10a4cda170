/**
 * Secrets at rest on every dialect (SPEC §8.5): what the store's table holds is sealed; a store
 * from before sealing is sealed in place on open (once, whoever opens it at the same time); a
 * store sealed with another key is refused with both key ids and loses nothing; a rotation
 * keeps the old secret for its grace; rekey re-seals under the new key.
 */
import crypto from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { masterKeyOf } from '../../src/secrets/envelope.js';
import { rotateAppSecret } from '../../src/secrets/rotate.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore } from '../../src/state/store.js';
import type { StateStore } from '../../src/state/types.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';
import { minimalRecord } from '../state/fixtures.js';

const dialects = await dialectsUnderTest();
const OTHER_KEY = masterKeyOf(crypto.randomBytes(32), 'another key');
const SECRET = 'plaintext-secret-of-crm-0123456789abcdef';

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`secrets at rest on ${dialect}`, () => {
    let db: TestDatabase;
    const opened: StateStore[] = [];
    const open = async (masterKey = TEST_MASTER_KEY): Promise<StateStore> => {
      const store = await openStateStore(db.url, { masterKey });
      opened.push(store);
      return store;
    };
    const rows = async () =>
      (await db.sql(
        `SELECT name, secret, previous_secret FROM ${db.store('appvisor_secrets')} ORDER BY name`,
      )) as {
        name: string;
        secret: string;
        previous_secret: string | null;
      }[];

    beforeEach(async () => {
      db = await create();
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      await db.drop();
    });

    it('stores no plaintext: SELECT secret FROM appvisor_secrets shows only sealed values', async () => {
      const store = await open();
      const fence = await store.beginTerm();
      const main = await store.ensureMainSecret('main-secret-0123456789abcdef0123456789');
      await store.ensureSecret('crm', SECRET, fence);
      const stored = await rows();
      expect(stored.map((r) => r.name)).toEqual(['crm', 'main']);
      for (const row of stored) {
        expect(row.secret).toMatch(new RegExp(`^av1:${TEST_MASTER_KEY.id}:`));
        expect(row.secret).not.toContain(SECRET);
        expect(row.secret).not.toContain(main);
      }
      expect(await store.getSecret('crm')).toBe(SECRET);
      // The reader (plan) has no key: it answers the sealed text, never the secret.
      const reader = await openStateReader(db.url);
      try {
        expect(await reader.getSecret('crm')).toBe(stored[0]!.secret);
      } finally {
        await reader.close();
      }
    });

    it('seals a plaintext store in place on open, once, whoever opens it at the same time', async () => {
      const first = await open();
      await first.close();
      await db.sql(
        `INSERT INTO ${db.store('appvisor_secrets')} (name, secret, created_at) VALUES (?, ?, ?), (?, ?, ?)`,
        [
          'crm',
          SECRET,
          '2026-01-01T00:00:00.000Z',
          'main',
          'main-plain-0123456789',
          '2026-01-01T00:00:00.000Z',
        ],
      );
      const stores = await Promise.all([open(), open(), open()]);
      const sealed = await rows();
      expect(sealed.every((r) => r.secret.startsWith(`av1:${TEST_MASTER_KEY.id}:`))).toBe(true);
      for (const s of stores) expect(await s.getSecret('crm')).toBe(SECRET);
      expect(await stores[0]!.getSecret('main')).toBe('main-plain-0123456789');
      // Opening again changes nothing (idempotent).
      await open();
      expect(await rows()).toEqual(sealed);
    });

    it('refuses a store sealed with another key, naming both key ids, and keeps the secret', async () => {
      const store = await open();
      await store.ensureSecret('crm', SECRET, await store.beginTerm());
      const before = await rows();
      const refused = openStateStore(db.url, { masterKey: OTHER_KEY });
      await expect(refused).rejects.toMatchObject({ code: 'MASTER_KEY_INVALID' });
      const message = await refused.catch((err: Error) => err.message);
      expect(message).toContain(TEST_MASTER_KEY.id);
      expect(message).toContain(OTHER_KEY.id);
      expect(message).not.toContain(TEST_MASTER_KEY.key.toString('base64'));
      expect(await rows()).toEqual(before);
      expect(await (await open()).getSecret('crm')).toBe(SECRET);
    });

    it('a store opened without a key neither reads nor writes secrets', async () => {
      const store = await openStateStore(db.url);
      opened.push(store);
      await expect(store.ensureMainSecret('x'.repeat(40))).rejects.toMatchObject({
        code: 'MASTER_KEY_INVALID',
      });
      expect(await rows()).toEqual([]);
    });

    it('rotation: the previous secret verifies for the grace, raises the record version, names who did it', async () => {
      const store = await open();
      const fence = await store.beginTerm();
      await store.putRecord(minimalRecord('crm'), fence);
      await store.ensureSecret('crm', SECRET, fence);
      const version = (await store.getRecord('crm'))!.version!;
      const result = await rotateAppSecret(store, {
        name: 'crm',
        graceMs: 60_000,
        by: 'token ops via test',
        fence,
      });
      const set = (await store.getSecretSet('crm'))!;
      expect(set.current.kid).toBe(result.kid);
      expect(set.current.secret).not.toBe(SECRET);
      expect(set.previous).toMatchObject({
        secret: SECRET,
        kid: result.previousKid,
        until: result.previousUntil,
      });
      expect((await store.getRecord('crm'))!.version).toBe(version + 1);
      const [entry] = await store.listHistory('crm');
      expect(entry).toMatchObject({ by: 'token ops via test', steps: [{ action: 'rotate-secret' }] });
      // Both sealed in the table.
      const [row] = await rows();
      expect(row!.previous_secret).toMatch(/^av1:/);
      expect(row!.previous_secret).not.toContain(SECRET);

      // A second rotation within the grace: the first secret is gone at once.
      await rotateAppSecret(store, { name: 'crm', graceMs: 60_000, by: 'token ops via test', fence });
      const again = (await store.getSecretSet('crm'))!;
      expect(again.previous?.secret).toBe(set.current.secret);
      expect([again.current.secret, again.previous?.secret]).not.toContain(SECRET);

      // Grace 0: the old one is absent at once.
      await rotateAppSecret(store, { name: 'crm', graceMs: 0, by: 'token ops via test', fence });
      expect((await store.getSecretSet('crm'))!.previous).toBeUndefined();
    });

    it('rotation is fenced, and refuses an app without a secret', async () => {
      const store = await open();
      const old = await store.beginTerm();
      await store.ensureSecret('crm', SECRET, old);
      await store.beginTerm();
      await expect(
        rotateAppSecret(store, { name: 'crm', graceMs: 1000, by: 'x', fence: old }),
      ).rejects.toMatchObject({ code: 'LOCK_LOST' });
      expect(await store.getSecret('crm')).toBe(SECRET);
      await expect(
        rotateAppSecret(store, { name: 'nope', graceMs: 1000, by: 'x', fence: await store.beginTerm() }),
      ).rejects.toMatchObject({ code: 'APP_NOT_FOUND' });
    });

    it('seals a connection URL with a password in a record, and opens it for the store and a reader with the key', async () => {
      const store = await open();
      const fence = await store.beginTerm();
      const base = minimalRecord('ext');
      const url = 'postgres://bob:hunter2@127.0.0.1:9/ext';
      const record = {
        ...base,
        spec: {
          ...base.spec,
          database: { ...base.spec.database, mode: 'new-connection' as const, connection: { url } },
        },
      };
      const written = await store.putRecord(record, fence);
      expect(written.spec.database.connection?.url).toBe(url);
      const specOf = async () =>
        String(
          (await db.sql(`SELECT spec FROM ${db.store('appvisor_apps')} WHERE name = ?`, ['ext']))[0]!.spec,
        );
      expect(await specOf()).not.toContain('hunter2');
      expect((await store.getRecord('ext'))?.spec.database.connection?.url).toBe(url);
      expect((await store.listRecords())[0]?.spec.database.connection?.url).toBe(url);
      const keyless = await openStateReader(db.url);
      const keyed = await openStateReader(db.url, { masterKey: TEST_MASTER_KEY });
      try {
        expect((await keyless.getRecord('ext'))?.spec.database.connection?.url).toMatch(/^av1:/);
        expect((await keyed.getRecord('ext'))?.spec.database.connection?.url).toBe(url);
      } finally {
        await keyless.close();
        await keyed.close();
      }

      // A record written before sealing is sealed on open; rekey re-seals it.
      const plain = JSON.parse(await specOf()) as typeof record.spec;
      await db.sql(`UPDATE ${db.store('appvisor_apps')} SET spec = ? WHERE name = ?`, [
        JSON.stringify({ ...plain, database: { ...plain.database, connection: { url } } }),
        'ext',
      ]);
      expect(await specOf()).toContain('hunter2');
      const reopened = await open();
      expect(await specOf()).not.toContain('hunter2');
      expect((await reopened.getRecord('ext'))?.spec.database.connection?.url).toBe(url);
      await reopened.rekey(OTHER_KEY, await reopened.beginTerm());
      expect(await specOf()).toContain(`av1:${OTHER_KEY.id}:`);
      expect((await (await open(OTHER_KEY)).getRecord('ext'))?.spec.database.connection?.url).toBe(url);
    });

    it('rekey re-seals every secret under the new key in one fenced write', async () => {
      const store = await open();
      const fence = await store.beginTerm();
      await store.ensureMainSecret('main-secret-0123456789abcdef0123456789');
      await store.ensureSecret('crm', SECRET, fence);
      await rotateAppSecret(store, { name: 'crm', graceMs: 60_000, by: 'x', fence });
      const set = await store.getSecretSet('crm');
      // A deposed writer changes nothing.
      const stale = await store.beginTerm();
      await store.beginTerm();
      const before = await rows();
      await expect(store.rekey(OTHER_KEY, stale)).rejects.toMatchObject({ code: 'LOCK_LOST' });
      expect(await rows()).toEqual(before);

      expect(await store.rekey(OTHER_KEY, await store.beginTerm())).toBe(2);
      for (const row of await rows()) {
        expect(row.secret).toMatch(new RegExp(`^av1:${OTHER_KEY.id}:`));
        if (row.previous_secret !== null)
          expect(row.previous_secret).toMatch(new RegExp(`^av1:${OTHER_KEY.id}:`));
      }
      expect(await store.getSecretSet('crm')).toEqual(set);
      expect(await (await open(OTHER_KEY)).getSecretSet('crm')).toEqual(set);
      await expect(openStateStore(db.url, { masterKey: TEST_MASTER_KEY })).rejects.toMatchObject({
        code: 'MASTER_KEY_INVALID',
      });
    });
  });
}
