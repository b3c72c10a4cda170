/**
 * `appvisor rotate-secret` without a server and `appvisor rekey`, as a user runs them: the CLI
 * in-process against a temp folder, on SQLite and PostgreSQL main databases.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateMasterKeyText, parseMasterKey } from '../../src/secrets/master-key.js';
import { openStateStore } from '../../src/state/store.js';
import { runCli } from '../helpers/cli.js';
import { masterKeyIn } from '../helpers/master-key.js';
import { manifest, type Serve, startServe } from '../serve/harness.js';
import { dialectsUnderTest, type TestDatabase } from '../state/dialects.js';

const dialects = (await dialectsUnderTest()).filter((d) => d.dialect !== 'mysql');

for (const { dialect, available, create } of dialects) {
  describe.skipIf(!available)(`rotate-secret and rekey from the CLI on ${dialect}`, () => {
    let db: TestDatabase;
    let cwd: string;
    let env: NodeJS.ProcessEnv;
    let serve: Serve | undefined;
    const dataDir = () => path.join(cwd, 'data');
    // PostgreSQL: a schema in the test's own main database (dropped with it), not a database
    // named crm on the shared server.
    const crm = () => manifest('crm', dialect === 'postgres' ? 'database: {mode: new-schema}\n' : '');
    const secretsWith = async (keyText?: string) => {
      const masterKey = keyText ? parseMasterKey(keyText, 'test') : await masterKeyIn(dataDir());
      const store = await openStateStore(db.url, { masterKey });
      try {
        return { crm: await store.getSecretSet('crm'), main: await store.getSecretSet('main') };
      } finally {
        await store.close();
      }
    };

    beforeEach(async () => {
      db = await create();
      cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-cli-secrets-'));
      await fs.mkdir(path.join(cwd, 'apps.d'));
      await fs.writeFile(path.join(cwd, 'apps.d', 'crm.yaml'), crm());
      env = { APPVISOR_DATABASE_URL: db.url, APPVISOR_PORT: '9' };
      const applied = await runCli(['apply'], { cwd, env });
      expect(applied.code, applied.stderr).toBe(0);
    });
    afterEach(async () => {
      await serve?.close();
      serve = undefined;
      await fs.rm(cwd, { recursive: true, force: true });
      await db.drop();
    });

    it('rotate-secret without a server works on the store under the lease and writes the history', async () => {
      const before = await secretsWith();
      const r = await runCli(['rotate-secret', 'crm', '--grace', '10m'], { cwd, env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`tokens of key ${before.crm!.current.kid} stay valid until`);
      const after = await secretsWith();
      expect(after.crm!.previous).toMatchObject({
        kid: before.crm!.current.kid,
        secret: before.crm!.current.secret,
      });
      expect(after.crm!.current.secret).not.toBe(before.crm!.current.secret);
      expect(after.main).toEqual(before.main);

      const store = await openStateStore(db.url, { masterKey: await masterKeyIn(dataDir()) });
      try {
        const [entry] = await store.listHistory('crm');
        expect(entry).toMatchObject({ by: expect.stringContaining('appvisor-cli'), outcome: 'updated' });
      } finally {
        await store.close();
      }
      const bad = await runCli(['rotate-secret', 'crm', '--grace', 'later'], { cwd, env });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('--grace must be a duration');
      const unknown = await runCli(['rotate-secret', 'nope'], { cwd, env });
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('no app named nope');
    });

    it('rekey writes a new data/master-key and re-seals every secret; the old key opens nothing', async () => {
      const oldText = await fs.readFile(path.join(dataDir(), 'master-key'), 'utf8');
      const before = await secretsWith();
      const r = await runCli(['rekey'], { cwd, env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Re-sealed 2 secrets under master key [0-9a-f]{8}/);
      const newText = await fs.readFile(path.join(dataDir(), 'master-key'), 'utf8');
      expect(newText).not.toBe(oldText);
      expect(r.stdout).not.toContain(newText.trim());
      expect((await fs.stat(path.join(dataDir(), 'master-key'))).mode & 0o777).toBe(0o600);
      await expect(fs.access(path.join(dataDir(), 'master-key.old'))).rejects.toThrow();
      expect(await secretsWith()).toEqual(before);
      await expect(secretsWith(oldText)).rejects.toMatchObject({ code: 'MASTER_KEY_INVALID' });
    });

    it('with APPVISOR_MASTER_KEY set, rekey takes the new key from APPVISOR_NEW_MASTER_KEY and says what to set', async () => {
      const current = (await fs.readFile(path.join(dataDir(), 'master-key'), 'utf8')).trim();
      const before = await secretsWith();
      const withEnv = { ...env, APPVISOR_MASTER_KEY: current };
      const missing = await runCli(['rekey'], { cwd, env: withEnv });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('APPVISOR_NEW_MASTER_KEY');
      const next = generateMasterKeyText();
      const r = await runCli(['rekey'], { cwd, env: { ...withEnv, APPVISOR_NEW_MASTER_KEY: next } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('Set APPVISOR_MASTER_KEY to the new key');
      expect(r.stdout).not.toContain(next);
      // The file is left alone: the key lives in the environment.
      expect((await fs.readFile(path.join(dataDir(), 'master-key'), 'utf8')).trim()).toBe(current);
      expect(await secretsWith(next)).toEqual(before);
    });

    it('rekey refuses while a server leads, and changes nothing', async () => {
      serve = await startServe({ dir: cwd, databaseUrl: db.url, manifests: { 'crm.yaml': crm() } });
      const keyText = await fs.readFile(path.join(dataDir(), 'master-key'), 'utf8');
      const before = await secretsWith();
      const r = await runCli(['rekey'], { cwd, env });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('holds the reconcile lock');
      expect(await fs.readFile(path.join(dataDir(), 'master-key'), 'utf8')).toBe(keyText);
      expect(await secretsWith()).toEqual(before);
    });
  });
}
