/**
 * Two `serve` replicas on one PostgreSQL state store (SPEC §8.1): the admin token the first one
 * generates is stored hashed, and the second accepts it without ever holding it.
 */
import fs from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';
import { type Serve, startServe } from './harness.js';

const postgres = (await dialectsUnderTest()).find((d) => d.dialect === 'postgres')!;

describe.skipIf(!postgres.available)('admin tokens across two replicas on one PostgreSQL store', () => {
  let db: TestDatabase;
  const serves: Serve[] = [];

  /** A replica in its own temp folder (apps.d, data dir), on port 0, without APPVISOR_ADMIN_TOKEN. */
  const replica = async (): Promise<Serve> => {
    const serve = await startServe({ databaseUrl: db.url, supervisor: { env: {} } });
    serves.push(serve);
    return serve;
  };

  beforeEach(async () => {
    db = await postgres.create();
  });
  afterEach(async () => {
    for (const serve of serves.splice(0).reverse()) {
      await serve.close();
      await fs.rm(serve.dir, { recursive: true, force: true });
    }
    await db.drop();
  });

  it("accepts the first replica's generated token on the second, which holds no copy of it", async () => {
    const first = await replica();
    const token = first.sup.adminToken!;
    expect(first.sup.adminTokenFile).toBe(`${first.dataDir}/admin-token`);
    expect((await fs.readFile(first.sup.adminTokenFile!, 'utf8')).trim()).toBe(token);

    const second = await replica();
    expect(second.sup.adminToken).toBeUndefined();
    expect(second.sup.adminTokenFile).toBeUndefined();
    await expect(fs.stat(`${second.dataDir}/admin-token`)).rejects.toMatchObject({ code: 'ENOENT' });

    for (const serve of [first, second]) {
      const apps = await serve.request('/_supervisor/api/apps', { token });
      expect(apps.status).toBe(200);
      expect(Array.isArray(apps.body)).toBe(true);
      const wrong = await serve.request('/_supervisor/api/apps', { token: 'not-the-admin-token-0123456789' });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }
  });
});
