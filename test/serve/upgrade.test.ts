/**
 * Upgrades under `serve` (SPEC §7): the application's code moves on between two runs of
 * appvisor; apps with `upgrade: true` migrate while starting, `upgrade: false` ones wait in
 * `needs-upgrade`, and data newer than the code puts the app in `error`.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { manifest, type Serve, signUpAndIn, startServe, waitFor, writeTestApp } from './harness.js';

let serve: Serve | undefined;
let dir: string | undefined;

afterEach(async () => {
  await serve?.close();
  serve = undefined;
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('serve: upgrades', () => {
  it('migrates upgrade: true apps, holds upgrade: false ones in needs-upgrade, refuses newer data', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
    const manifests = {
      'up.yaml': manifest('up', 'startMode: with-main\n'),
      'held.yaml': manifest('held', 'startMode: with-main\nupgrade: false\n'),
      'lazy.yaml': manifest('lazy', 'upgrade: false\n'),
    };
    // Run 1: the code at version 2; every app installs its data at version 2.
    serve = await startServe({ dir, manifests });
    const token = await signUpAndIn(serve, '/apps/up', 'alice', 'alice-password-1');
    expect((await serve.request('/apps/lazy/api/info')).status).toBe(200);
    await serve.close();

    // Run 2: the code at version 3.
    serve = await startServe({ dir, manifests, app: await writeTestApp(dir, { version: 3 }) });
    const s = serve;
    expect((await s.view('up')).status).toBe('running');
    expect((await s.request('/apps/up/api/me', { token })).body).toEqual({ username: 'alice' });

    const held = await s.view('held');
    expect(held.status).toBe('needs-upgrade');
    expect(held.error?.code).toBe('APP_NEEDS_UPGRADE');
    for (const name of ['held', 'lazy']) {
      const visit = await s.request(`/apps/${name}/api/info`);
      expect(visit.status, name).toBe(503);
      expect(visit.body.error.code, name).toBe('APP_NEEDS_UPGRADE');
      expect(visit.body.error.message, name).toMatch(/data version 2 .* code is at 3/);
    }
    expect((await s.view('lazy')).status).toBe('needs-upgrade');

    // upgrade: true in the manifest: migrated and started without restarting appvisor.
    await s.write('held.yaml', manifest('held', 'startMode: with-main\nupgrade: true\n'));
    await waitFor(async () => (await s.view('held')).status === 'running', 'held to migrate and run', 5_000);
    expect((await s.request('/apps/held/api/info')).status).toBe(200);
    // A lazy app whose visit found old data: migrated by its reconcile, the next visit starts it.
    await s.write('lazy.yaml', manifest('lazy', 'upgrade: true\n'));
    await waitFor(
      async () => (await s.request('/apps/lazy/api/info')).status === 200,
      'lazy to migrate and start on a visit',
      5_000,
    );
    expect((await s.view('lazy')).status).toBe('running');
    await s.close();

    // Run 3: older code (version 1) must not touch version-3 data.
    serve = await startServe({ dir, manifests, app: await writeTestApp(dir, { version: 1 }) });
    const old = serve;
    const up = await old.view('up');
    expect(up.status).toBe('error');
    expect(up.error?.message).toMatch(/newer than the code/);
    const visit = await old.request('/apps/up/api/info');
    expect(visit.status).toBe(503);
    expect(visit.body.error.message).toMatch(/newer than the code/);
    expect((await old.request('/api/info')).status).toBe(503);
  });
});
