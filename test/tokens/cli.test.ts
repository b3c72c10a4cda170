/**
 * `appvisor token create|list|revoke` as a user runs them (in-process, captured output), on the
 * state store of a running `serve`, on SQLite and PostgreSQL: the token printed once works
 * against the server at once or within seconds, the list never shows it, and a revoked token
 * gets 401 from the running server within its 3 s refresh.
 */
import fs from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliRun, runCli } from '../helpers/cli.js';
import { type Serve, startServe, waitFor } from '../serve/harness.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';

const dialects = (await dialectsUnderTest()).filter(
  (d) => d.dialect === 'sqlite' || d.dialect === 'postgres',
);

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`appvisor token on ${dialect}, beside a running serve`, () => {
    let db: TestDatabase;
    let serve: Serve;
    let cli: (args: string[]) => Promise<CliRun>;

    beforeEach(async () => {
      db = await create();
      serve = await startServe({ databaseUrl: db.url });
      // The CLI reads the same settings as serve would: here from the environment.
      const env = { APPVISOR_DATABASE_URL: db.url, APPVISOR_DATA_DIR: serve.dataDir };
      cli = (args) => runCli(args, { cwd: serve.dir, env });
    });
    afterEach(async () => {
      await serve.close();
      await fs.rm(serve.dir, { recursive: true, force: true });
      await db.drop();
    });

    it('creates (printed once, default scope read), lists without the token and revokes (401 within 3 s)', async () => {
      const made = await cli(['token', 'create', 'ci-deploy']);
      expect(made.code).toBe(0);
      const token = made.stdout.trim();
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(made.stderr).toMatch(/Made admin token ci-deploy with scope read/);
      expect(made.stderr).toMatch(/shown only this once/);
      expect(made.stderr).toContain('Authorization: Bearer <token>');

      // The running server accepts it (a token it does not know yet makes it read the store again).
      const whoami = await waitFor(
        async () => {
          const answer = await serve.request('/_supervisor/api/whoami', { token });
          return answer.status === 200 ? answer.body : undefined;
        },
        'the new token accepted',
        3_000,
      );
      expect(whoami).toEqual({ name: 'ci-deploy', scope: 'read' });
      expect((await serve.request('/_supervisor/api/apps/x/stop', { method: 'POST', token })).status).toBe(
        403,
      );

      const ops = await cli(['token', 'create', 'ops', '--scope', 'operate', '--json']);
      expect(ops.code).toBe(0);
      expect(JSON.parse(ops.stdout)).toMatchObject({
        name: 'ops',
        scope: 'operate',
        token: expect.any(String),
      });

      const listed = await cli(['token', 'list']);
      expect(listed.code).toBe(0);
      const lines = listed.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME +SCOPE +CREATED +LAST USED +REVOKED$/);
      expect(lines.slice(1).map((l) => l.split(/ +/).slice(0, 2))).toEqual([
        ['ci-deploy', 'read'],
        ['ops', 'operate'],
      ]);
      expect(listed.stdout).not.toContain(token);
      const json = JSON.parse((await cli(['token', 'list', '--json'])).stdout) as Record<string, unknown>[];
      expect(json.map((t) => t.name)).toEqual(['ci-deploy', 'ops']);
      expect(json[0]!.lastUsedAt).toEqual(expect.any(String));
      expect(JSON.stringify(json)).not.toMatch(/hash|token"/);

      const revoked = await cli(['token', 'revoke', 'ci-deploy']);
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toMatch(/^Revoked admin token ci-deploy \(scope read\)/);
      const at = Date.now();
      await waitFor(
        async () => (await serve.request('/_supervisor/api/apps', { token })).status === 401,
        'the revoked token refused by the running server',
        4_000,
      );
      expect(Date.now() - at).toBeLessThan(3_500);
      expect((await cli(['token', 'revoke', 'ci-deploy'])).stdout).toMatch(/was already revoked \(at /);
      const after = await cli(['token', 'list']);
      expect(after.stdout).toMatch(/^ci-deploy +read +\S+ +\S+ +\d{4}-\d\d-\d\dT/m);
    });

    it('exits 1 with a clear message for an unknown, taken, revoked or malformed name and a wrong scope', async () => {
      const unknown = await cli(['token', 'revoke', 'nobody']);
      expect(unknown).toMatchObject({ code: 1, stderr: 'appvisor: no admin token named nobody\n' });

      expect((await cli(['token', 'create', 'ci'])).code).toBe(0);
      const taken = await cli(['token', 'create', 'ci', '--scope', 'admin']);
      expect(taken.code).toBe(1);
      expect(taken.stderr).toMatch(/^appvisor: admin token name ci is taken: a token of that name exists/);
      expect(taken.stdout).toBe('');

      expect((await cli(['token', 'revoke', 'ci'])).code).toBe(0);
      const reused = await cli(['token', 'create', 'ci']);
      expect(reused.code).toBe(1);
      expect(reused.stderr).toMatch(/was revoked at .*pick another name/);

      const malformed = await cli(['token', 'create', 'My Token']);
      expect(malformed.code).toBe(1);
      expect(malformed.stderr).toMatch(/admin token name 'My Token' is not allowed: use 1 to 40 lower-case/);
      const scope = await cli(['token', 'create', 'fine', '--scope', 'root']);
      expect(scope.code).toBe(1);
      expect(scope.stderr).toMatch(/scope 'root' is not one of read, operate, admin/);
      const names = JSON.parse((await cli(['token', 'list', '--json'])).stdout).map(
        (t: { name: string }) => t.name,
      );
      expect(names).toEqual(['ci']);
    });
  });
}
