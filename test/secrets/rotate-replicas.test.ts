/**
 * A rotation on two replicas of one PostgreSQL store (SPEC §8.4, §8.1): only the leader rotates
 * (the other names it); the other replica's running app takes the new secret through the change
 * feed, without a restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, manifest, type Serve, signUpAndIn, startServe, waitFor } from '../serve/harness.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';

const PG = (await dialectsUnderTest()).find((d) => d.dialect === 'postgres')!;

describe.skipIf(!PG.available)('rotate-secret with two replicas on PostgreSQL', () => {
  const serves: Serve[] = [];
  const databases: TestDatabase[] = [];
  afterEach(async () => {
    await Promise.all(serves.splice(0).map((s) => s.close()));
    await Promise.all(databases.splice(0).map((d) => d.drop()));
  });

  it('the leader rotates, the follower names it, and the follower app refreshes its secret', async () => {
    const db = await PG.create();
    databases.push(db);
    const manifests = { 'crm.yaml': manifest('crm', 'startMode: with-main\ndatabase: {mode: new-schema}\n') };
    const a = await startServe({ manifests, databaseUrl: db.url });
    serves.push(a);
    const b = await startServe({ manifests, databaseUrl: db.url });
    serves.push(b);
    const [leader, follower] = a.sup.leading() ? [a, b] : [b, a];
    expect(leader.sup.leading()).toBe(true);
    await waitFor(
      async () => (await follower.view('crm')).status === 'running',
      'crm running on the follower',
    );

    const oldToken = await signUpAndIn(leader, '/apps/crm', 'alice', 'alice-password-1');
    expect((await follower.request('/apps/crm/api/me', { token: oldToken })).status).toBe(200);

    const refused = await follower.request('/_supervisor/api/apps/crm/rotate-secret', {
      method: 'POST',
      token: ADMIN_TOKEN,
    });
    expect(refused.status).toBe(500);
    expect(refused.body.error.code).toBe('LOCK_HELD');
    expect(refused.body.error.message).toContain(leader.sup.replica.id);

    const rotated = await leader.request('/_supervisor/api/apps/crm/rotate-secret', {
      method: 'POST',
      token: ADMIN_TOKEN,
      body: { grace: '0s' },
    });
    expect(rotated.status).toBe(200);
    const signed = await leader.request('/apps/crm/api/auth/signin', {
      method: 'POST',
      body: { username: 'alice', password: 'alice-password-1' },
    });
    const newToken = signed.body.token as string;
    const startedAt = (await follower.view('crm')).startedAt;
    // Within the change feed's reach (NOTIFY, else the 2 s poll), without a restart.
    await waitFor(
      async () => (await follower.request('/apps/crm/api/me', { token: newToken })).status === 200,
      'the follower opens the new token',
      8_000,
    );
    expect((await follower.request('/apps/crm/api/me', { token: oldToken })).status).toBe(401);
    expect((await follower.view('crm')).startedAt).toBe(startedAt);
  });
});
