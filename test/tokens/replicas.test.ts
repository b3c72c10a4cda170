/**
 * Two `serve` replicas on one PostgreSQL state store: a token made through one replica's API
 * works on the other, and once revoked there it is refused by the other within the bearer
 * check's 3 s refresh.
 */
import fs from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Serve, startServe, waitFor } from '../serve/harness.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';

const postgres = (await dialectsUnderTest()).find((d) => d.dialect === 'postgres')!;

describe.skipIf(!postgres.available)('a revoked token on every replica', () => {
  let db: TestDatabase;
  const serves: Serve[] = [];

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

  it('is refused by the replica that did not revoke it within 3 s', async () => {
    const a = await startServe({ databaseUrl: db.url });
    serves.push(a);
    const b = await startServe({ databaseUrl: db.url });
    serves.push(b);
    const made = await a.request('/_supervisor/api/tokens', {
      method: 'POST',
      token: ADMIN_TOKEN,
      body: { name: 'roaming', scope: 'read' },
    });
    const token = made.body.token as string;
    await waitFor(
      async () => (await b.request('/_supervisor/api/whoami', { token })).status === 200,
      'the token accepted on the other replica',
      4_000,
    );
    // Used on b just now, so b holds it in its cache: only its refresh can drop it.
    expect((await b.request('/_supervisor/api/apps', { token })).status).toBe(200);
    expect(
      (await a.request('/_supervisor/api/tokens/roaming', { method: 'DELETE', token: ADMIN_TOKEN })).status,
    ).toBe(200);
    const at = Date.now();
    expect((await a.request('/_supervisor/api/apps', { token })).status).toBe(401);
    await waitFor(
      async () => (await b.request('/_supervisor/api/apps', { token })).status === 401,
      'the revoked token refused on the other replica',
      4_000,
    );
    expect(Date.now() - at).toBeLessThan(3_500);
  });
});
