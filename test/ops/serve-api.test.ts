/**
 * Backup, restore and clone over a running server's admin API (SPEC §8.4), as the UI's Backup
 * button and the CLI use them: the archive downloaded while the app serves, its data broken, the
 * archive uploaded back, and a clone made beside it — on SQLite and PostgreSQL (database and
 * schema). Scopes: `read` may not back up, `operate` may back up but not restore or clone.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { damagedArchive } from '../helpers/damaged-archive.js';
import { postgres, uniqueName, urlWithDatabase, withPgClient } from '../helpers/servers.js';
import { ADMIN_TOKEN, manifest, type Serve, signUpAndIn, startServe, waitFor } from '../serve/harness.js';

const PG = await postgres();

interface Case {
  readonly label: string;
  readonly available: boolean;
  /** The main database URL (a fresh one), or undefined for the SQLite default. */
  readonly setUp: (prefix: string) => Promise<string | undefined>;
  readonly tearDown: (prefix: string) => Promise<void>;
  readonly mode: string;
}

const cases: Case[] = [
  {
    label: 'SQLite',
    available: true,
    setUp: async () => undefined,
    tearDown: async () => undefined,
    mode: '',
  },
  ...(['new-database', 'new-schema'] as const).map(
    (mode): Case => ({
      label: `PostgreSQL ${mode}`,
      available: PG.available,
      setUp: async (prefix) => {
        await withPgClient(PG.url, (c) => c.query(`CREATE DATABASE "${prefix}_main"`));
        return urlWithDatabase(PG.url, `${prefix}_main`);
      },
      tearDown: (prefix) =>
        withPgClient(PG.url, async (c) => {
          const { rows } = await c.query<{ datname: string }>(
            'SELECT datname FROM pg_database WHERE datname LIKE $1',
            [`${prefix}%`],
          );
          for (const r of rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
        }),
      mode: `database: {mode: ${mode}}\n`,
    }),
  ),
];

for (const c of cases) {
  describe.skipIf(!c.available)(`backup, restore and clone over the admin API on ${c.label}`, () => {
    const prefix = uniqueName('avo');
    const app = `${prefix}_desk`;
    const copy = `${prefix}_copy`;
    let serve: Serve;
    const tokens: Record<string, string> = {};
    const post = (route: string, token: string, init: { body?: Uint8Array; json?: unknown } = {}) =>
      fetch(`${serve.sup.url}/_supervisor/api/apps/${route}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'x-appvisor-client': 'ops-test',
          ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(init.json !== undefined
          ? { body: JSON.stringify(init.json) }
          : init.body
            ? { body: init.body }
            : {}),
      });

    beforeAll(async () => {
      const url = await c.setUp(prefix);
      serve = await startServe({
        ...(url ? { databaseUrl: url } : {}),
        manifests: { 'desk.yaml': manifest(app, `startMode: with-main\n${c.mode}`) },
      });
      for (const scope of ['read', 'operate'] as const) {
        const made = await serve.request('/_supervisor/api/tokens', {
          method: 'POST',
          token: ADMIN_TOKEN,
          body: { name: `${scope}-ops`, scope },
        });
        tokens[scope] = made.body.token;
      }
    }, 60_000);
    afterAll(async () => {
      await serve?.close();
      if (serve) await fs.rm(serve.dir, { recursive: true, force: true });
      await c.tearDown(prefix);
    });

    it('downloads a backup, restores it over broken data, and clones it into a second app', async () => {
      const base = `/apps/${app}`;
      const alice = await signUpAndIn(serve, base, 'alice', 'alice-password-1');
      const note = await serve.request(`${base}/api/notes`, {
        method: 'POST',
        token: alice,
        body: { text: 'before the backup' },
      });
      expect(note.status).toBe(201);

      // `read` sees but does not back up; `operate` does.
      const refused = await post(`${app}/backup`, tokens.read!);
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
      const download = await post(`${app}/backup`, tokens.operate!);
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe('application/gzip');
      expect(download.headers.get('content-disposition')).toMatch(
        new RegExp(`^attachment; filename="${app}-\\d{8}T\\d{6}Z\\.tar\\.gz"$`),
      );
      const archive = Buffer.from(await download.arrayBuffer());
      expect(archive.length).toBe(Number(download.headers.get('content-length')));
      expect(archive.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));

      // Break the data: the note deleted, a user who should not exist.
      const listed = await serve.request(`${base}/api/notes`, { token: alice });
      for (const n of listed.body.notes)
        await serve.request(`${base}/api/notes/${n.id}`, { method: 'DELETE', token: alice });
      await signUpAndIn(serve, base, 'mallory', 'mallory-password-1');
      expect((await serve.request(`${base}/api/notes`, { token: alice })).body.notes).toEqual([]);

      // `operate` may not restore; a damaged upload is refused and changes nothing.
      expect((await post(`${app}/restore`, tokens.operate!, { body: archive })).status).toBe(403);
      const damaged = damagedArchive(archive);
      const bad = await post(`${app}/restore`, ADMIN_TOKEN, { body: damaged });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('ARCHIVE_INVALID');
      expect((await serve.request(`${base}/api/notes`, { token: alice })).status).toBe(200);

      const restored = await post(`${app}/restore`, ADMIN_TOKEN, { body: archive });
      expect(restored.status, await restored.clone().text()).toBe(200);
      expect(await restored.json()).toMatchObject({ app, from: app, created: false });
      // Served again (it was stopped around the swap), with the data of the backup: the note is
      // back, mallory is gone, and alice's token still opens it (the secret is kept).
      await waitFor(
        async () => (await serve.request(`${base}/api/notes`, { token: alice })).status === 200,
        `${app} serving again`,
      );
      expect(
        (await serve.request(`${base}/api/notes`, { token: alice })).body.notes.map(
          (n: { text: string }) => n.text,
        ),
      ).toEqual(['before the backup']);
      const mallory = await serve.request(`${base}/api/auth/signin`, {
        method: 'POST',
        body: { username: 'mallory', password: 'mallory-password-1' },
      });
      expect(mallory.status).toBe(401);

      // A clone: a new app with the same users, its manifest in apps.d, a secret of its own.
      expect((await post(`${app}/clone`, tokens.operate!, { json: { as: copy } })).status).toBe(403);
      const cloned = await post(`${app}/clone`, ADMIN_TOKEN, { json: { as: copy } });
      expect(cloned.status, await cloned.clone().text()).toBe(201);
      expect(await cloned.json()).toMatchObject({ app: copy, from: app, created: true });
      expect(await fs.readFile(path.join(serve.appsDir, `${copy}.yaml`), 'utf8')).toContain(`name: ${copy}`);
      const copyBase = `/apps/${copy}`;
      await waitFor(
        async () => (await serve.request(`${copyBase}/api/info`)).status === 200,
        `${copy} serving`,
      );
      const inCopy = await serve.request(`${copyBase}/api/auth/signin`, {
        method: 'POST',
        body: { username: 'alice', password: 'alice-password-1' },
      });
      expect(inCopy.status).toBe(200);
      expect(
        (await serve.request(`${copyBase}/api/notes`, { token: inCopy.body.token })).body.notes.map(
          (n: { text: string }) => n.text,
        ),
      ).toEqual(['before the backup']);
      // The source's tokens do not open the clone.
      expect((await serve.request(`${copyBase}/api/notes`, { token: alice })).status).toBe(401);

      // Every operator action is in the app's history, with the token that asked.
      const history = (await serve.admin(`/apps/${app}/history`)).body as {
        steps: { action: string; detail: string }[];
        by?: string;
      }[];
      const acts = history
        .filter((e) => e.by !== undefined)
        .map((e) => [e.steps.map((s) => `${s.action}: ${s.detail}`).join('; '), e.by])
        .reverse();
      expect(acts).toEqual([
        [
          expect.stringMatching(/^backup: backed up into a download over the admin API \(\d+ bytes\)$/),
          'token operate-ops via ops-test',
        ],
        [expect.stringMatching(/^restore: restored /), 'token APPVISOR_ADMIN_TOKEN via ops-test'],
        [
          expect.stringMatching(new RegExp(`^backup: backed up into a copy for the clone ${copy} `)),
          'token APPVISOR_ADMIN_TOKEN via ops-test',
        ],
      ]);
    }, 120_000);
  });
}
