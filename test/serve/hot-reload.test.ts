/**
 * Hot reload end to end: manifests edited, disabled, removed and restored while `serve` runs,
 * observed over HTTP and through the admin API (SPEC §4, §6).
 */
import fsSync, { writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { manifest, type Serve, signUpAndIn, startServe, waitFor } from './harness.js';

let serve: Serve | undefined;

afterEach(async () => {
  await serve?.close();
  serve = undefined;
});

describe('serve: hot reload', () => {
  it('keeps an app running while its manifest is invalid, shows the error with file:line:col, clears it when fixed', async () => {
    const good = manifest('crm', 'startMode: with-main\n');
    serve = await startServe({ manifests: { 'crm.yaml': good } });
    const s = serve;
    const startedAt = (await s.view('crm')).startedAt;
    expect(startedAt).not.toBeNull();

    await s.write('crm.yaml', `${good}domains: [unclosed\n`);
    const broken = await waitFor(async () => {
      const v = await s.view('crm');
      return v.error?.code === 'MANIFEST_INVALID' ? v : undefined;
    }, 'MANIFEST_INVALID on crm');
    expect(broken.error?.message).toMatch(/crm\.yaml:\d+:\d+: /);
    expect(broken.status).toBe('running');
    expect(broken.startedAt).toBe(startedAt);
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);

    // An invalid field (not just broken YAML) is an error too, still without a removal.
    await s.write('crm.yaml', `${good}colour: blue\n`);
    await waitFor(
      async () => /colour/.test((await s.view('crm')).error?.message ?? ''),
      'unknown field error',
    );
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);

    await s.write('crm.yaml', good);
    const fixed = await waitFor(async () => {
      const v = await s.view('crm');
      return v.error === null ? v : undefined;
    }, 'the error to clear');
    expect(fixed.status).toBe('running');
    expect(fixed.startedAt).toBe(startedAt);
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);
  });

  it('answers 503 APP_DISABLED within seconds of enabled: false, and serves again once enabled', async () => {
    serve = await startServe({ manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n') } });
    const s = serve;
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);

    const written = Date.now();
    await s.write('crm.yaml', manifest('crm', 'startMode: with-main\nenabled: false\n'));
    const disabled = await waitFor(
      async () => {
        const a = await s.request('/apps/crm/api/info');
        return a.status === 503 ? a : undefined;
      },
      'APP_DISABLED',
      2_500,
    );
    expect(Date.now() - written).toBeLessThan(2_500);
    expect(disabled.body).toMatchObject({ error: { code: 'APP_DISABLED', app: 'crm' } });
    expect((await s.view('crm')).status).toBe('disabled');

    await s.write('crm.yaml', manifest('crm', 'startMode: with-main\n'));
    await waitFor(async () => (await s.request('/apps/crm/api/info')).status === 200, 'crm to serve again');
    expect((await s.view('crm')).status).toBe('running');
  });

  it('stops and unroutes a removed app, keeps its data and secret, and restores it with the same users', async () => {
    const text = manifest('crm', 'startMode: with-main\n');
    serve = await startServe({ manifests: { 'crm.yaml': text, 'keep.yaml': manifest('keep') } });
    const s = serve;
    const token = await signUpAndIn(s, '/apps/crm', 'alice', 'alice-password-1');

    await s.remove('crm.yaml');
    const gone = await waitFor(async () => {
      const a = await s.request('/apps/crm/api/info');
      return a.status === 404 ? a : undefined;
    }, 'crm to be unrouted');
    expect(gone.body).toMatchObject({ error: { code: 'APP_NOT_FOUND', app: 'crm' } });
    await waitFor(async () => (await s.view('crm')).status === 'orphaned', 'crm orphaned');
    // A domain or main-app path does not reach it either.
    expect((await s.request('/api/info')).body.name).toBe('main');

    await s.write('crm.yaml', text);
    await waitFor(async () => (await s.view('crm')).status === 'running', 'crm restored and running');
    // Same secret: the token from before still opens it; same data: alice can sign in.
    const me = await s.request('/apps/crm/api/me', { token });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ username: 'alice' });
    const signin = await s.request('/apps/crm/api/auth/signin', {
      method: 'POST',
      body: { username: 'alice', password: 'alice-password-1' },
    });
    expect(signin.status).toBe(200);
  });

  it('never restarts an app for domains or displayName, and restarts it for config', async () => {
    serve = await startServe({ manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n') } });
    const s = serve;
    const first = await s.view('crm');
    expect(first.status).toBe('running');

    await s.write(
      'crm.yaml',
      manifest('crm', 'startMode: with-main\ndisplayName: The CRM\ndomains: [new.localhost]\n'),
    );
    const renamed = await waitFor(async () => {
      const v = await s.view('crm');
      return v.displayName === 'The CRM' ? v : undefined;
    }, 'the new displayName');
    expect(renamed.domains).toEqual(['new.localhost']);
    expect(renamed.startedAt).toBe(first.startedAt);
    // The domain routes right away.
    const byHost = await s.request('/api/info', { host: 'new.localhost' });
    expect(byHost.body).toEqual({ name: 'crm', version: '2' });
    expect((await s.view('crm')).startedAt).toBe(first.startedAt);

    await s.write(
      'crm.yaml',
      manifest(
        'crm',
        'startMode: with-main\ndisplayName: The CRM\ndomains: [new.localhost]\nconfig: {banner: hi}\n',
      ),
    );
    const restarted = await waitFor(async () => {
      const v = await s.view('crm');
      return v.status === 'running' && v.startedAt !== first.startedAt ? v : undefined;
    }, 'a restart after the config change');
    expect(restarted.error).toBeNull();
    expect((await s.request('/api/info', { host: 'new.localhost' })).body.name).toBe('crm');
  });
});

describe('serve: last applied spec', () => {
  it('serves an app whose manifest turned invalid while appvisor was down, on its last applied spec', async () => {
    const good = manifest('crm', 'startMode: with-main\n');
    serve = await startServe({ manifests: { 'crm.yaml': good, 'desk.yaml': manifest('desk') } });
    const { dir } = serve;
    const token = await signUpAndIn(serve, '/apps/crm', 'alice', 'alice-password-1');
    await serve.close({ keepDir: true });

    serve = await startServe({
      dir,
      removeDirOnClose: true,
      manifests: {
        'crm.yaml': `${good}domains: [unclosed\n`,
        'desk.yaml': `${manifest('desk')}colour: blue\n`,
      },
    });
    const s = serve;
    const crm = await s.view('crm');
    expect(crm.error?.code).toBe('MANIFEST_INVALID');
    expect(crm.status).toBe('running');
    expect((await s.request('/apps/crm/api/me', { token })).status).toBe(200);
    expect((await s.request('/apps/desk/api/info')).status).toBe(200);
    expect((await s.view('desk')).error?.code).toBe('MANIFEST_INVALID');
  });

  it('keeps every app when apps.d is emptied (empty-set guard)', async () => {
    serve = await startServe({
      manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n'), 'desk.yaml': manifest('desk') },
    });
    const s = serve;
    await s.remove('crm.yaml');
    await s.remove('desk.yaml');
    await waitFor(async () => {
      await s.sup.reload();
      await s.sup.queue.onIdle();
      return (await s.admin('/plan')).body.guard !== undefined;
    }, 'the guard to hold');
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);
    expect((await s.request('/apps/desk/api/info')).status).toBe(200);
    expect((await s.view('crm')).status).toBe('running');
  });
});

describe('serve: files', () => {
  it('follows an editor-style atomic save, and never reads temporary files as manifests', async () => {
    serve = await startServe({ manifests: { 'crm.yaml': manifest('crm') } });
    const s = serve;
    const reconciled: string[] = [];
    s.sup.events.on('reconcile', (e) => reconciled.push(e.app));
    // A temp file with a manifest in it is ignored…
    await s.write('crm.yaml.tmp', manifest('ghost'));
    await s.write('.crm.yaml.swp', manifest('ghost2'));
    // …and a burst of edits ends in the last one.
    for (let i = 1; i <= 10; i++) {
      writeFileSync(path.join(s.appsDir, 'crm.yaml'), manifest('crm', `displayName: CRM ${i}\n`));
    }
    await fs.rename(path.join(s.appsDir, 'crm.yaml.tmp'), path.join(s.appsDir, 'ghost.yaml'));
    await waitFor(async () => (await s.request('/apps/ghost/api/info')).status === 200, 'ghost routed');
    await waitFor(async () => (await s.view('crm')).displayName === 'CRM 10', 'the last edit');
    await s.sup.queue.onIdle();
    expect((await s.request('/apps/ghost2/api/info')).status).toBe(404);
    expect(reconciled.filter((a) => a === 'crm').length).toBeLessThanOrEqual(2);
  });

  it('keeps an app whose file was renamed and then broken', async () => {
    serve = await startServe({
      // A second app, so that the empty-set guard plays no part.
      manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n'), 'keep.yaml': manifest('keep') },
    });
    const s = serve;
    await fs.rename(path.join(s.appsDir, 'crm.yaml'), path.join(s.appsDir, 'sales.yaml'));
    await waitFor(async () => (await s.view('crm')).file?.endsWith('sales.yaml'), 'the new file name');
    await s.sup.queue.onIdle();
    await s.write('sales.yaml', ': : :\n\t- [broken');
    await waitFor(async () => (await s.view('crm')).error?.code === 'MANIFEST_INVALID', 'the error');
    await s.sup.queue.onIdle();
    expect((await s.view('crm')).status).toBe('running');
    expect((await s.request('/apps/crm/api/info')).status).toBe(200);
  });

  it('never drops at once: a moved file orphans the app, schedules the drop, and putting it back keeps the data', async () => {
    const text = manifest('sandbox', 'deletionPolicy: drop\n');
    serve = await startServe({ manifests: { 'sandbox.yaml': text, 'keep.yaml': manifest('keep') } });
    const s = serve;
    const token = await signUpAndIn(s, '/apps/sandbox', 'alice', 'alice-password-1');
    const file = path.join(s.dataDir, 'apps', 'sandbox.sqlite');
    await s.remove('sandbox.yaml');
    await waitFor(async () => (await s.view('sandbox')).status === 'orphaned', 'sandbox orphaned');
    await s.sup.queue.onIdle();
    const view = await s.view('sandbox');
    // Scheduled after the default grace, visible in the view, and the data is still there.
    expect(Date.parse(view.dropAt!) - Date.now()).toBeGreaterThan(23 * 3_600_000);
    expect(fsSync.existsSync(file)).toBe(true);
    const planned = await s.admin('/plan');
    expect(planned.body.changes).toEqual([
      expect.objectContaining({ app: 'sandbox', action: 'drop-database', dueAt: view.dropAt }),
    ]);
    await s.write('sandbox.yaml', text);
    await waitFor(async () => (await s.request('/apps/sandbox/api/info')).status === 200, 'sandbox back');
    // The same data: alice's token still names a user that exists.
    expect((await s.request('/apps/sandbox/api/me', { token })).status).toBe(200);
    expect((await s.view('sandbox')).dropAt).toBeNull();
    expect((await s.admin('/plan')).body.changes).toEqual([]);
  });

  it('runs a scheduled drop when it is due, and the app starts afresh when it is back', async () => {
    const text = manifest('sandbox', 'deletionPolicy: drop\ndropAfter: 1s\n');
    serve = await startServe({ manifests: { 'sandbox.yaml': text, 'keep.yaml': manifest('keep') } });
    const s = serve;
    const token = await signUpAndIn(s, '/apps/sandbox', 'alice', 'alice-password-1');
    const file = path.join(s.dataDir, 'apps', 'sandbox.sqlite');
    await s.remove('sandbox.yaml');
    await waitFor(async () => (await s.view('sandbox')).status === 'orphaned', 'sandbox orphaned');
    const removedAt = Date.now();
    expect((await s.view('sandbox')).dropAt).not.toBeNull();
    // Not before its time; no resync needed: the reconcile is requeued for the due time.
    await waitFor(() => !fsSync.existsSync(file), 'the database dropped', 5_000);
    expect(Date.now() - removedAt).toBeGreaterThanOrEqual(500);
    await waitFor(async () => (await s.view('sandbox')).dropAt === null, 'the schedule done');
    await s.write('sandbox.yaml', text);
    await waitFor(async () => (await s.request('/apps/sandbox/api/info')).status === 200, 'sandbox back');
    // Fresh data, same secret: the token verifies but names a user who no longer exists.
    expect((await s.request('/apps/sandbox/api/me', { token })).status).toBe(401);
    await signUpAndIn(s, '/apps/sandbox', 'alice', 'alice-password-1');
  });
});
