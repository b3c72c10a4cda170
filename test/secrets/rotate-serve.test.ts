/**
 * `rotate-secret` against a running server (SPEC §8.4): the admin API rotates on the leader, the
 * running app signs with the new secret without a restart, a token of the old secret opens the
 * app during the grace and not after, a token of another app never does; `main` too; a token
 * whose scope is below `admin` is refused; the history names the token.
 */
import crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { openStateStore } from '../../src/state/store.js';
import { tokenHash } from '../../src/state/tokens.js';
import type { StateStore } from '../../src/state/types.js';
import { masterKeyIn } from '../helpers/master-key.js';
import { ADMIN_TOKEN, manifest, type Serve, signUpAndIn, startServe, waitFor } from '../serve/harness.js';

function decodeHeader(token: string): { kid?: string } {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8')) as { kid?: string };
}

function capture(): { out: string[]; io: Parameters<typeof main>[1] } {
  const out: string[] = [];
  const stream = { write: (s: string) => out.push(s) !== 0, isTTY: false };
  return { out, io: { stdout: stream, stderr: stream, env: {}, cwd: process.cwd() } as never };
}

describe('rotate-secret on a running server', () => {
  let serve: Serve | undefined;
  const stores: StateStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await serve?.close();
    serve = undefined;
  });

  it('an old token works during the grace and fails after; the new one works; no restart', async () => {
    serve = await startServe({
      manifests: {
        'crm.yaml': manifest('crm', 'startMode: with-main\n'),
        'desk.yaml': manifest('desk', 'startMode: with-main\n'),
      },
    });
    const s = serve;
    const oldToken = await signUpAndIn(s, '/apps/crm', 'alice', 'alice-password-1');
    const deskToken = await signUpAndIn(s, '/apps/desk', 'alice', 'alice-password-1');
    const oldKid = decodeHeader(oldToken).kid;
    expect(oldKid).toMatch(/^[0-9a-f]{8}$/);
    const startedAt = (await s.view('crm')).startedAt;

    const rotated = await s.request('/_supervisor/api/apps/crm/rotate-secret', {
      method: 'POST',
      token: ADMIN_TOKEN,
      body: { grace: '2s' },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ app: 'crm', previousKid: oldKid });
    expect(rotated.body.kid).not.toBe(oldKid);
    expect(JSON.stringify(rotated.body)).not.toMatch(/secret"/);

    // The running app (not restarted) signs with the new secret and still opens the old token.
    expect((await s.view('crm')).startedAt).toBe(startedAt);
    const signed = await s.request('/apps/crm/api/auth/signin', {
      method: 'POST',
      body: { username: 'alice', password: 'alice-password-1' },
    });
    const newToken = signed.body.token as string;
    expect(decodeHeader(newToken).kid).toBe(rotated.body.kid);
    expect((await s.request('/apps/crm/api/me', { token: oldToken })).status).toBe(200);
    expect((await s.request('/apps/crm/api/me', { token: newToken })).status).toBe(200);
    // Another app's token never opens crm; desk's own secret did not change.
    expect((await s.request('/apps/crm/api/me', { token: deskToken })).status).toBe(401);
    expect((await s.request('/apps/desk/api/me', { token: deskToken })).status).toBe(200);
    expect((await s.request('/apps/desk/api/me', { token: newToken })).status).toBe(401);

    // Refused once the grace is over, and not before.
    await waitFor(
      async () => (await s.request('/apps/crm/api/me', { token: oldToken })).status === 401,
      'the old token refused after the grace',
      5_000,
    );
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(rotated.body.previousUntil));
    expect((await s.request('/apps/crm/api/me', { token: newToken })).status).toBe(200);

    // The history names the token and the client.
    const history = await s.admin('/apps/crm/history');
    expect(history.body[0]).toMatchObject({
      by: expect.stringContaining('token APPVISOR_ADMIN_TOKEN'),
      outcome: 'updated',
    });
    expect(history.body[0].steps[0].action).toBe('rotate-secret');
  });

  it("rotates the main app's secret, which shared apps follow", async () => {
    serve = await startServe({
      manifests: { 'help.yaml': manifest('help', 'startMode: with-main\njwt: {secret: shared}\n') },
    });
    const s = serve;
    const mainToken = await signUpAndIn(s, '', 'bob', 'bob-password-12');
    await signUpAndIn(s, '/apps/help', 'bob', 'help-password-1');
    const r = await s.request('/_supervisor/api/apps/main/rotate-secret', {
      method: 'POST',
      token: ADMIN_TOKEN,
      body: { grace: '0s' },
    });
    expect(r.status).toBe(200);
    // Grace 0: the main app's old tokens stop at once, in the main app and the shared app alike.
    expect((await s.request('/api/me', { token: mainToken })).status).toBe(401);
    expect((await s.request('/apps/help/api/me', { token: mainToken })).status).toBe(401);
    const fresh = await signUpAndIn(s, '', 'carol', 'carol-password-1');
    expect((await s.request('/api/me', { token: fresh })).status).toBe(200);
    // A shared app has no secret of its own to rotate.
    const shared = await s.request('/_supervisor/api/apps/help/rotate-secret', {
      method: 'POST',
      token: ADMIN_TOKEN,
    });
    expect(shared.status).toBe(400);
    expect(shared.body.error.message).toContain('rotate-secret main');
  });

  it('needs an admin token; an unknown app is 404; the CLI asks the server', async () => {
    serve = await startServe({ manifests: { 'crm.yaml': manifest('crm') } });
    const s = serve;
    const store = await openStateStore(s.settings.database.url, { masterKey: await masterKeyIn(s.dataDir) });
    stores.push(store);
    const operate = `op-${crypto.randomBytes(8).toString('hex')}`;
    await store.ensureAdminToken({
      name: 'ops',
      hash: tokenHash(operate),
      scope: 'operate',
      createdAt: new Date().toISOString(),
    });
    // The server reads new tokens from the store within seconds.
    const refused = await waitFor(async () => {
      const answer = await s.request('/_supervisor/api/apps/crm/rotate-secret', {
        method: 'POST',
        token: operate,
      });
      return answer.status !== 401 && answer;
    }, 'the operate token to be known');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('FORBIDDEN');
    const before = await store.getSecretSet('crm');
    expect(before?.previous).toBeUndefined();
    const missing = await s.request('/_supervisor/api/apps/nope/rotate-secret', {
      method: 'POST',
      token: ADMIN_TOKEN,
    });
    expect(missing.status).toBe(404);
    const bad = await s.request('/_supervisor/api/apps/crm/rotate-secret', {
      method: 'POST',
      token: ADMIN_TOKEN,
      body: { grace: 'soon' },
    });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'REQUEST_INVALID']);
    expect((await store.getSecretSet('crm'))?.current.kid).toBe(before?.current.kid);

    const { out, io } = capture();
    const code = await main(['rotate-secret', 'crm', '--grace', '5m', '--url', s.sup.url], {
      ...io,
      env: { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN },
    } as never);
    expect(out.join('')).toContain('Rotated the JWT secret of crm');
    expect(code).toBe(0);
    const after = await store.getSecretSet('crm');
    expect(after?.previous?.kid).toBe(before?.current.kid);
  });
});
