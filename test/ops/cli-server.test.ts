/**
 * `appvisor backup`, `restore` and `clone` beside a running server, as the README's Backups
 * section has a user do it: the commands go through the server's admin API (the leader does the
 * work; no LOCK_HELD), the archive is saved on the client's side, and a refusal keeps its code.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { ADMIN_TOKEN, manifest, type Serve, signUpAndIn, startServe, waitFor } from '../serve/harness.js';

describe('backup, restore and clone from the CLI beside a running server', () => {
  let serve: Serve;

  /** The CLI beside the server, pointed at it with `--url`. */
  const run = (args: string[], env: NodeJS.ProcessEnv = { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN }) =>
    runCli([...args, '--url', serve.sup.url], { cwd: serve.dir, env });

  beforeAll(async () => {
    serve = await startServe({ manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n') } });
  });
  afterAll(async () => {
    await serve?.close();
    if (serve) await fs.rm(serve.dir, { recursive: true, force: true });
  });

  it('backs up through the server, restores broken data from the file, and clones', async () => {
    const alice = await signUpAndIn(serve, '/apps/crm', 'alice', 'alice-password-1');
    await serve.request('/apps/crm/api/notes', { method: 'POST', token: alice, body: { text: 'kept' } });

    const backedUp = await run(['backup', 'crm', '-o', 'saved/crm.tar.gz']);
    expect(backedUp.stderr).toBe('');
    expect(backedUp.code).toBe(0);
    expect(backedUp.stdout).toMatch(/^backed up app crm: .* → saved\/crm\.tar\.gz\n/);
    const file = path.join(serve.dir, 'saved', 'crm.tar.gz');
    expect((await fs.stat(file)).size).toBeGreaterThan(100);
    expect(await fs.readdir(path.join(serve.dir, 'saved'))).toEqual(['crm.tar.gz']);

    // Break the data, then restore it from the CLI while the server runs.
    const notes = (await serve.request('/apps/crm/api/notes', { token: alice })).body.notes;
    for (const n of notes)
      await serve.request(`/apps/crm/api/notes/${n.id}`, { method: 'DELETE', token: alice });
    const restored = await run(['restore', 'saved/crm.tar.gz', '--yes']);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(/^restored app crm: .* ← saved\/crm\.tar\.gz\n {2}data version \d+/);
    await waitFor(
      async () => (await serve.request('/apps/crm/api/notes', { token: alice })).body?.notes?.length === 1,
      'the note back',
    );

    // A damaged file is refused by the server with its code; nothing changes.
    const damaged = Buffer.from(await fs.readFile(file));
    damaged[damaged.length - 30]! ^= 0xff;
    await fs.writeFile(path.join(serve.dir, 'saved', 'bad.tar.gz'), damaged);
    const refused = await run(['restore', 'saved/bad.tar.gz', '--yes']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^appvisor: backup archive \(uploaded\) is unusable: /);

    // A read-only token may not back up: the server says so.
    const made = await serve.request('/_supervisor/api/tokens', {
      method: 'POST',
      token: ADMIN_TOKEN,
      body: { name: 'viewer', scope: 'read' },
    });
    const forbidden = await run(['backup', 'crm', '-o', 'saved/x.tar.gz'], {
      APPVISOR_ADMIN_TOKEN: made.body.token,
    });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/FORBIDDEN|scope read/);
    await expect(fs.stat(path.join(serve.dir, 'saved', 'x.tar.gz'))).rejects.toThrow();

    const cloned = await run(['clone', 'crm', 'crm2']);
    expect(cloned.stderr).toBe('');
    expect(cloned.code).toBe(0);
    expect(cloned.stdout).toMatch(/^cloned app crm into new app crm2 in \d+\.\d s\n {2}data version \d+\n/);
    await waitFor(async () => (await serve.request('/apps/crm2/api/info')).status === 200, 'crm2 serving');
    expect(await fs.readFile(path.join(serve.appsDir, 'crm2.yaml'), 'utf8')).toContain('name: crm2');
  }, 60_000);
});
