/**
 * Named tokens through a real `serve` (SQLite): what each scope may do over the admin API, the
 * token routes (list, create once, revoke), whoami, a revoked token refused within the bearer
 * check's refresh, and the app's history naming the token of an operator's stop.
 */
import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, manifest, type Serve, startServe, waitFor } from '../serve/harness.js';

describe('named admin tokens over the admin API', () => {
  let serve: Serve;
  const tokens: Record<string, string> = {};
  const api = (path: string, token: string, method = 'GET', body?: unknown) =>
    serve.request(`/_supervisor/api${path}`, {
      method,
      token,
      headers: { 'x-appvisor-client': 'api-test' },
      ...(body !== undefined ? { body } : {}),
    });

  beforeAll(async () => {
    serve = await startServe({
      manifests: { 'desk.yaml': manifest('desk', 'startMode: with-main\n') },
    });
    await waitFor(async () => (await serve.view('desk')).status === 'running', 'desk running');
    for (const scope of ['read', 'operate', 'admin'] as const) {
      const made = await api('/tokens', ADMIN_TOKEN, 'POST', { name: `${scope}-bot`, scope });
      expect(made.status).toBe(201);
      expect(made.body).toMatchObject({ name: `${scope}-bot`, scope, createdAt: expect.any(String) });
      tokens[scope] = made.body.token;
    }
  });
  afterAll(async () => {
    await serve?.close();
    if (serve) await fs.rm(serve.dir, { recursive: true, force: true });
  });

  it('says whose token a request carries', async () => {
    expect((await api('/whoami', tokens.read!)).body).toEqual({ name: 'read-bot', scope: 'read' });
    expect((await api('/whoami', ADMIN_TOKEN)).body).toEqual({
      name: 'APPVISOR_ADMIN_TOKEN',
      scope: 'admin',
    });
  });

  it('gives a read token 403 FORBIDDEN on stop, naming the token, its scope and the scope needed', async () => {
    expect((await api('/apps', tokens.read!)).status).toBe(200);
    const stop = await api('/apps/desk/stop', tokens.read!, 'POST');
    expect(stop.status).toBe(403);
    expect(stop.body.error).toMatchObject({ code: 'FORBIDDEN' });
    expect(stop.body.error.message).toBe(
      'admin token read-bot has scope read; stop an app needs scope operate',
    );
    expect((await serve.view('desk')).status).toBe('running');
  });

  it('lets an operate token stop (history names it) but not manage tokens; admin may all', async () => {
    for (const [method, path, body] of [
      ['GET', '/tokens', undefined],
      ['POST', '/tokens', { name: 'sneaky', scope: 'admin' }],
      ['DELETE', '/tokens/admin-bot', undefined],
    ] as const) {
      for (const scope of ['read', 'operate'] as const) {
        const answer = await api(path, tokens[scope]!, method, body);
        expect(answer.status, `${scope} ${method} ${path}`).toBe(403);
        expect(answer.body.error.message).toMatch(new RegExp(`scope ${scope}; .* needs scope admin$`));
      }
    }
    const listed = await api('/tokens', tokens.admin!);
    expect(listed.status).toBe(200);
    expect(listed.body.map((t: { name: string }) => t.name)).toEqual([
      'admin-bot',
      'operate-bot',
      'read-bot',
    ]);
    expect(listed.text).not.toMatch(/hash|"token"/);

    const stop = await api('/apps/desk/stop', tokens.operate!, 'POST');
    expect(stop.status).toBe(202);
    await waitFor(async () => (await serve.view('desk')).status === 'stopped', 'desk stopped');
    const visit = await serve.request('/apps/desk/');
    expect(visit.body.error.message).toMatch(/^app desk was stopped by token operate-bot via api-test at /);
    const history = await waitFor(async () => {
      const answer = await api('/apps/desk/history', tokens.read!);
      return answer.body.find((h: { steps: { action: string }[] }) =>
        h.steps.some((s) => s.action === 'stop'),
      )
        ? answer.body
        : undefined;
    }, 'the stop in the history');
    const stopEntry = history.find((h: { steps: { action: string }[] }) =>
      h.steps.some((s) => s.action === 'stop'),
    );
    expect(stopEntry.by).toBe('token operate-bot via api-test');
    // The reconciler's own runs (the first start, with-main) name nobody.
    const ownStart = history.find((h: { steps: { detail: string }[] }) =>
      h.steps.some((s) => s.detail === 'startMode: with-main'),
    );
    expect(ownStart).toBeDefined();
    expect(ownStart).not.toHaveProperty('by');

    const start = await api('/apps/desk/start', tokens.admin!, 'POST');
    expect(start.status).toBe(202);
    await waitFor(async () => (await serve.view('desk')).status === 'running', 'desk running again');
    const after = await waitFor(async () => {
      const answer = await api('/apps/desk/history', tokens.read!);
      return answer.body[0]?.by === 'token admin-bot via api-test' ? answer.body : undefined;
    }, 'the start in the history');
    expect(after[0].steps.map((s: { action: string }) => s.action)).toContain('start');
  });

  it('bulk stop and start: a read token is refused, an operate token stops and starts the named apps for real', async () => {
    const refused = await api('/bulk/stop', tokens.read!, 'POST', { apps: ['desk'] });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toBe(
      'admin token read-bot has scope read; stop apps needs scope operate',
    );
    expect((await serve.view('desk')).status).toBe('running');

    const stop = await api('/bulk/stop', tokens.operate!, 'POST', { apps: ['desk', 'no-such-app'] });
    expect(stop.status).toBe(200);
    expect(stop.body).toMatchObject({
      action: 'stop',
      accepted: ['desk'],
      refused: [{ app: 'no-such-app', error: { code: 'APP_NOT_FOUND' } }],
    });
    await waitFor(async () => (await serve.view('desk')).status === 'stopped', 'desk stopped in bulk');
    const start = await api('/bulk/start', tokens.operate!, 'POST', { apps: ['desk'] });
    expect(start.body).toMatchObject({ accepted: ['desk'], refused: [] });
    await waitFor(async () => (await serve.view('desk')).status === 'running', 'desk started in bulk');
    const history = await api('/apps/desk/history', tokens.read!);
    expect(history.body[0]?.by).toBe('token operate-bot via api-test');
  });

  it('refuses bad bodies, taken and revoked names with their codes, and changes nothing', async () => {
    const bad = [
      [{ name: 'Bad Name', scope: 'read' }, 400, 'TOKEN_INVALID'],
      [{ name: 'fine', scope: 'superuser' }, 400, 'TOKEN_INVALID'],
      [{ name: 'fine' }, 400, 'TOKEN_INVALID'],
      [['fine', 'read'], 400, 'TOKEN_INVALID'],
      [{ name: 'read-bot', scope: 'read' }, 409, 'TOKEN_EXISTS'],
    ] as const;
    for (const [body, status, code] of bad) {
      const answer = await api('/tokens', ADMIN_TOKEN, 'POST', body);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(answer.body.error.code).toBe(code);
    }
    const notJson = await serve.request('/_supervisor/api/tokens', {
      method: 'POST',
      token: ADMIN_TOKEN,
      headers: { 'content-type': 'application/json' },
      body: undefined,
    });
    expect(notJson.status).toBe(400);
    const put = await api('/tokens', ADMIN_TOKEN, 'PUT', { name: 'x', scope: 'read' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST');
    expect((await api('/tokens/read-bot', ADMIN_TOKEN, 'GET')).headers.get('allow')).toBe('DELETE');
    expect((await api('/tokens/nobody', ADMIN_TOKEN, 'DELETE')).body.error).toMatchObject({
      code: 'TOKEN_NOT_FOUND',
      message: 'no admin token named nobody',
    });
    const names = (await api('/tokens', ADMIN_TOKEN)).body.map((t: { name: string }) => t.name);
    expect(names).toEqual(['admin-bot', 'operate-bot', 'read-bot']);
  });

  it('revokes a token: 401 on this replica within the 3 s refresh, listed as revoked, its name not reused', async () => {
    const made = await api('/tokens', ADMIN_TOKEN, 'POST', { name: 'short-lived', scope: 'operate' });
    const token = made.body.token as string;
    expect((await api('/apps', token)).status).toBe(200);
    const revoked = await api('/tokens/short-lived', tokens.admin!, 'DELETE');
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ name: 'short-lived', revokedAt: expect.any(String) });
    const at = Date.now();
    await waitFor(async () => (await api('/apps', token)).status === 401, 'the revoked token refused', 4_000);
    expect(Date.now() - at).toBeLessThan(3_500);
    const again = await api('/tokens', ADMIN_TOKEN, 'POST', { name: 'short-lived', scope: 'read' });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/revoked at/);
    const listed = (await api('/tokens', ADMIN_TOKEN)).body.find(
      (t: { name: string }) => t.name === 'short-lived',
    );
    expect(listed).toEqual({
      name: 'short-lived',
      scope: 'operate',
      createdAt: expect.any(String),
      lastUsedAt: expect.any(String),
      revokedAt: revoked.body.revokedAt,
    });
  });
});
