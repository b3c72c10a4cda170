/**
 * A revoked `default` token stays revoked: a restart of `serve` with its `data/admin-token`
 * still on disk does not import it again (before tombstones, a deleted default came back from
 * the file), and a replica without the file does not generate a new one.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveAdminToken } from '../../src/admin/token.js';
import { openStateStore } from '../../src/state/store.js';
import { DEFAULT_TOKEN, type StateStore } from '../../src/state/types.js';
import { MemoryLog } from '../admin/fakes.js';
import { type Serve, startServe } from '../serve/harness.js';

describe('a revoked default admin token', () => {
  let dir: string;
  const serves: Serve[] = [];
  const start = async (): Promise<Serve> => {
    // No APPVISOR_ADMIN_TOKEN: the default token is the one.
    const serve = await startServe({ dir, supervisor: { env: {} } });
    serves.push(serve);
    return serve;
  };

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-default-revoked-'));
  });
  afterEach(async () => {
    for (const serve of serves.splice(0)) await serve.close().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is not imported again from data/admin-token on restart, nor made anew', async () => {
    const first = await start();
    const token = first.sup.adminToken!;
    expect(token).toBeDefined();
    const file = path.join(first.dataDir, 'admin-token');
    expect((await fs.readFile(file, 'utf8')).trim()).toBe(token);
    const made = await first.request('/_supervisor/api/tokens', {
      method: 'POST',
      token,
      body: { name: 'ops-admin', scope: 'admin' },
    });
    expect(made.status).toBe(201);
    const other = made.body.token as string;
    // The default revokes itself: every later request with it is refused at once here.
    expect((await first.request('/_supervisor/api/tokens/default', { method: 'DELETE', token })).status).toBe(
      200,
    );
    expect((await first.request('/_supervisor/api/apps', { token })).status).toBe(401);
    await first.close();
    serves.pop();

    // Restarted with the file still there.
    const second = await start();
    expect(second.sup.adminToken).toBeUndefined();
    expect((await fs.readFile(file, 'utf8')).trim()).toBe(token);
    expect((await second.request('/_supervisor/api/apps', { token })).status).toBe(401);
    expect((await second.request('/_supervisor/api/apps', { token: other })).status).toBe(200);
    const listed = await second.request('/_supervisor/api/tokens', { token: other });
    expect(listed.body).toEqual([
      expect.objectContaining({ name: DEFAULT_TOKEN, revokedAt: expect.any(String) }),
      expect.not.objectContaining({ revokedAt: expect.anything() }),
    ]);
    await second.close();
    serves.pop();

    // Without the file (a new replica's data dir): no new default either.
    await fs.rm(file);
    const third = await start();
    expect(third.sup.adminToken).toBeUndefined();
    await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    const names = (await third.request('/_supervisor/api/tokens', { token: other })).body.map(
      (t: { name: string; revokedAt?: string }) => [t.name, t.revokedAt !== undefined],
    );
    expect(names).toEqual([
      [DEFAULT_TOKEN, true],
      ['ops-admin', false],
    ]);
  });

  it('says in the log why the file is no longer accepted and how to make another token', async () => {
    let store: StateStore | undefined;
    try {
      store = await openStateStore(`sqlite:${path.join(dir, 'main.sqlite')}`);
      const dataDir = path.join(dir, 'data');
      const log = new MemoryLog();
      const made = await resolveAdminToken({ env: {}, dataDir, store, log });
      expect(made.source).toBe('generated');
      await store.revokeAdminToken(DEFAULT_TOKEN);
      const again = await resolveAdminToken({ env: {}, dataDir, store, log });
      expect(again).toEqual({ token: undefined, source: 'revoked' });
      const warning = log.lines.at(-1)!;
      expect(warning.level).toBe('warn');
      expect(warning.msg).toMatch(
        /^the admin token 'default' was revoked at \S+; .*admin-token is no longer accepted \(delete it\); .*appvisor token create NAME --scope admin/,
      );
      expect(warning.msg).not.toContain(made.token!);
      expect((await store.listAdminTokens()).map((t) => t.revokedAt !== undefined)).toEqual([true]);
    } finally {
      await store?.close();
    }
  });
});
