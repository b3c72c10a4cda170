/**
 * `appvisor serve` end to end over real HTTP: boot order, lazy start, routing, JWT isolation
 * between apps and the main app.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { manifest, type Serve, signUpAndIn, startServe, writeTestApp } from './harness.js';

let serve: Serve | undefined;
let dir: string | undefined;

afterEach(async () => {
  await serve?.close();
  serve = undefined;
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('serve: boot and routing', () => {
  it('starts with-main apps before readyz turns 200, and on-first-visit apps on their first visit', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    const app = await writeTestApp(dir);
    serve = await startServe({
      dir,
      app,
      noWait: true,
      manifests: {
        'crm.yaml': manifest('crm', 'startMode: with-main\nconfig: {createDelayMs: 300}\n'),
        'desk.yaml': manifest('desk'),
      },
    });
    const { sup } = serve;
    let ready = false;
    void sup.ready.then(() => (ready = true));

    // While the with-main app is still starting, readyz says so.
    const before = await serve.request('/_supervisor/readyz');
    expect(ready).toBe(false);
    expect(before.status).toBe(503);
    expect((await serve.request('/_supervisor/healthz')).status).toBe(200);

    await sup.ready;
    expect((await serve.request('/_supervisor/readyz')).status).toBe(200);
    const crm = await serve.view('crm');
    expect(crm.status).toBe('running');
    expect(crm.startedAt).not.toBeNull();

    // The on-first-visit app waits for its visitor.
    expect((await serve.view('desk')).status).toBe('stopped');
    const info = await serve.request('/apps/desk/api/info');
    expect(info.status).toBe(200);
    expect(info.body).toEqual({ name: 'desk', version: '2' });
    expect((await serve.view('desk')).status).toBe('running');

    const redirect = await serve.request('/apps/desk');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/apps/desk/');

    // Metrics count the apps by status and the requests per app.
    const metrics = await serve.request('/_supervisor/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/app="desk"/);
    expect(metrics.text).toMatch(/status="running"/);

    // The main app answers at the root.
    const main = await serve.request('/api/info');
    expect(main.status).toBe(200);
    expect(main.body.name).toBe('main');
  });

  it('keeps users and tokens apart: own secrets, shared secrets and the main app', async () => {
    serve = await startServe({
      manifests: {
        'crm.yaml': manifest('crm', 'startMode: with-main\n'),
        'desk.yaml': manifest('desk'),
        'help.yaml': manifest('help', 'jwt: {secret: shared}\n'),
        'wiki.yaml': manifest('wiki', 'jwt: {secret: shared}\n'),
      },
    });
    const s = serve;
    const crmToken = await signUpAndIn(s, '/apps/crm', 'alice', 'alice-password-1');

    // A user of crm does not exist in desk.
    const signin = await s.request('/apps/desk/api/auth/signin', {
      method: 'POST',
      body: { username: 'alice', password: 'alice-password-1' },
    });
    expect(signin.status).toBe(401);

    // crm's token opens crm, never desk, even once desk has its own alice.
    expect((await s.request('/apps/crm/api/me', { token: crmToken })).body).toEqual({ username: 'alice' });
    expect((await s.request('/apps/desk/api/me', { token: crmToken })).status).toBe(401);
    await signUpAndIn(s, '/apps/desk', 'alice', 'another-password');
    expect((await s.request('/apps/desk/api/me', { token: crmToken })).status).toBe(401);

    // The main app's token: accepted by a shared-secret app only for a user that exists there.
    const mainToken = await signUpAndIn(s, '', 'bob', 'bob-password-12');
    expect((await s.request('/api/me', { token: mainToken })).body).toEqual({ username: 'bob' });
    expect((await s.request('/apps/help/api/me', { token: mainToken })).status).toBe(401);
    const helpToken = await signUpAndIn(s, '/apps/help', 'bob', 'help-password-1');
    const me = await s.request('/apps/help/api/me', { token: mainToken });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ username: 'bob' });
    // An own-secret app refuses the main app's token, whoever the user.
    await signUpAndIn(s, '/apps/crm', 'bob', 'crm-password-12');
    expect((await s.request('/apps/crm/api/me', { token: mainToken })).status).toBe(401);
    // A sub-app's token never opens another sub-app, even with the same (shared) secret.
    await signUpAndIn(s, '/apps/wiki', 'bob', 'wiki-password-1');
    expect((await s.request('/apps/wiki/api/me', { token: helpToken })).status).toBe(401);
    // Nor the main app.
    expect((await s.request('/api/me', { token: helpToken })).status).toBe(401);
  });
});

describe('serve: no escape from routing', () => {
  it('sends an unknown Host to the main app and never lets a path reach /_supervisor', async () => {
    serve = await startServe({
      manifests: {
        'crm.yaml': manifest('crm', 'domains: [crm.localhost]\n'),
      },
    });
    const s = serve;
    const unknown = await s.request('/api/info', { host: 'nobody.localhost' });
    expect(unknown.status).toBe(200);
    expect(unknown.body.name).toBe('main');
    // Even a host that looks like an app name, or a sub-domain of a known domain.
    for (const host of ['crm', 'crm.localhost.evil', 'x.crm.localhost', 'localhost']) {
      const answer = await s.request('/api/info', { host });
      expect(answer.body?.name, host).toBe('main');
    }
    const byDomain = await s.request('/api/info', { host: 'CRM.localhost:8080' });
    expect(byDomain.body).toEqual({ name: 'crm', version: '2' });

    for (const p of [
      '/apps/../_supervisor/api/apps',
      '/apps/%2e%2e/',
      '/apps/%2e%2e/_supervisor/api/apps',
      '/apps/%2E%2E%2F_supervisor/api/apps',
      '/apps/crm%2F..%2F..%2F_supervisor/api/apps',
      '/apps/./crm/api/info',
    ]) {
      const answer = await s.request(p, { host: 'localhost' });
      expect(answer.status, p).toBe(404);
      expect(answer.body?.error?.code, p).toBe('APP_NOT_FOUND');
      expect(answer.text, p).not.toContain('"displayName"');
    }
    // fetch() resolves dot segments itself; a raw client does not. Both end at the main app.
    const resolved = await s.request('/apps/../api/info');
    expect(resolved.body?.name).toBe('main');
    // The admin API itself needs the token.
    expect((await s.request('/_supervisor/api/apps')).status).toBe(401);
    expect((await s.admin('/apps')).body.map((a: { name: string }) => a.name)).toEqual(['crm']);
  });
});

describe("serve: the supervisor's routes belong to the supervisor's host", () => {
  it("gives /_supervisor/… on an app's domain to the app, and with admin.hosts only to those hosts", async () => {
    serve = await startServe({
      manifests: { 'support.yaml': manifest('support', 'domains: [support.localhost]\n') },
      settings: { admin: { hosts: ['admin.localhost', '127.0.0.1'] } },
    });
    const s = serve;
    // On the app's domain, every path is the app's: no metrics, no admin page, no admin API.
    for (const p of ['/_supervisor/metrics', '/_supervisor/', '/_supervisor/api/apps']) {
      const answer = await s.request(p, { host: 'Support.localhost:13000' });
      expect(answer.status, p).toBe(404);
      expect(answer.text, p).not.toMatch(/appvisor_|<html|"displayName"/i);
    }
    const info = await s.request('/api/info', { host: 'support.localhost' });
    expect(info.body).toEqual({ name: 'support', version: '2' });

    // An admin host (any case, any port) reaches the supervisor.
    const metrics = await s.request('/_supervisor/metrics', { host: 'ADMIN.localhost:8443' });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/appvisor_apps/);
    expect((await s.request('/_supervisor/healthz')).status).toBe(200);
    // Any other host: /_supervisor/… is routed like any other path, to the main app.
    const other = await s.request('/_supervisor/metrics', { host: 'www.localhost' });
    expect(other.status).toBe(404);
    expect(other.text).not.toMatch(/appvisor_/);
  });
});
