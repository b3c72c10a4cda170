/**
 * A rotation on two replicas of one PostgreSQL store (SPEC §8.4, §8.1): only the leader rotates
 * (the other names it); the other replica's running app takes the new secret through the change
 * feed, without a restart.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateMasterKeyText, parseMasterKey } from '../../src/secrets/master-key.js';
import { TEST_MASTER_KEY } from '../helpers/master-key.js';
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

  /** Two replicas of one fresh PostgreSQL store serving `crm` (a new-schema app), told apart. */
  const twoReplicas = async (): Promise<{ leader: Serve; follower: Serve }> => {
    const db = await PG.create();
    databases.push(db);
    const manifests = { 'crm.yaml': manifest('crm', 'startMode: with-main\ndatabase: {mode: new-schema}\n') };
    const a = await startServe({ manifests, databaseUrl: db.url });
    serves.push(a);
    const b = await startServe({ manifests, databaseUrl: db.url });
    serves.push(b);
    const [leader, follower] = a.sup.leading() ? [a, b] : [b, a];
    return { leader, follower };
  };

  it('a rotation asked of the follower is done by the leader, and the follower app refreshes its secret', async () => {
    const { leader, follower } = await twoReplicas();
    expect(leader.sup.leading()).toBe(true);
    await waitFor(
      async () => (await follower.view('crm')).status === 'running',
      'crm running on the follower',
    );

    const oldToken = await signUpAndIn(leader, '/apps/crm', 'alice', 'alice-password-1');
    expect((await follower.request('/apps/crm/api/me', { token: oldToken })).status).toBe(200);

    // Asked of the follower (a load balancer sends it anywhere), the rotation is the leader's
    // work: the follower passes it on and answers what the leader answered.
    const rotated = await follower.request('/_supervisor/api/apps/crm/rotate-secret', {
      method: 'POST',
      token: ADMIN_TOKEN,
      headers: { 'x-appvisor-client': 'via-follower' },
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
    const [entry] = (await leader.admin('/apps/crm/history')).body as {
      by?: string;
      steps: { action: string }[];
    }[];
    expect(entry).toMatchObject({ by: 'token APPVISOR_ADMIN_TOKEN via via-follower' });
  });

  it("a backup and a restore asked of the follower are the leader's, passed on and streamed back", async () => {
    const { leader, follower } = await twoReplicas();
    await waitFor(
      async () => (await follower.view('crm')).status === 'running',
      'crm running on the follower',
    );
    const alice = await signUpAndIn(leader, '/apps/crm', 'alice', 'alice-password-1');
    // The follower names the leader's address in its view of the replicas once both beat.
    await waitFor(
      async () => ((await follower.admin('/replicas')).body as { leader: boolean }[]).some((r) => r.leader),
      'the follower to see the leader',
    );
    const post = (path: string, body?: Uint8Array) =>
      fetch(`${follower.sup.url}/_supervisor/api/apps/crm/${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        ...(body ? { body } : {}),
      });
    const download = await waitFor(async () => {
      const res = await post('backup');
      return res.status === 200 ? res : undefined;
    }, 'a backup through the follower');
    expect(download.headers.get('content-type')).toBe('application/gzip');
    const archive = Buffer.from(await download.arrayBuffer());
    expect(archive.length).toBe(Number(download.headers.get('content-length')));

    await signUpAndIn(leader, '/apps/crm', 'mallory', 'mallory-password-1');
    const restored = await post('restore', archive);
    expect(restored.status, await restored.clone().text()).toBe(200);
    await waitFor(
      async () =>
        (
          await leader.request('/apps/crm/api/auth/signin', {
            method: 'POST',
            body: { username: 'mallory', password: 'mallory-password-1' },
          })
        ).status === 401,
      'mallory gone after the restore',
    );
    expect((await leader.request('/apps/crm/api/me', { token: alice })).status).toBe(200);
  });

  it('a replica that generated a master key of its own is refused at start, naming both key ids, and changes nothing', async () => {
    const db = await PG.create();
    databases.push(db);
    const manifests = { 'crm.yaml': manifest('crm', 'database: {mode: new-schema}\n') };
    const first = await startServe({ manifests, databaseUrl: db.url });
    serves.push(first);
    const before = await db.sql(`SELECT name, secret FROM ${db.store('appvisor_secrets')} ORDER BY name`);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-own-key-'));
    await fs.mkdir(path.join(dir, 'data'));
    const own = generateMasterKeyText();
    await fs.writeFile(path.join(dir, 'data', 'master-key'), `${own}\n`, { mode: 0o600 });
    try {
      const refused = startServe({ dir, manifests, databaseUrl: db.url });
      await expect(refused).rejects.toMatchObject({ code: 'MASTER_KEY_INVALID' });
      const message = await refused.catch((err: Error) => err.message);
      expect(message).toContain(TEST_MASTER_KEY.id);
      expect(message).toContain(parseMasterKey(own, 'x').id);
      expect(message).not.toContain(own);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    expect(await db.sql(`SELECT name, secret FROM ${db.store('appvisor_secrets')} ORDER BY name`)).toEqual(
      before,
    );
    expect((await first.admin('/apps/crm')).status).toBe(200);
  });
});
