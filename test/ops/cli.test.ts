/** `appvisor backup`, `restore` and `clone` in-process, as a user runs them on SQLite: output and exit codes. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

/** The CLI as a user runs it in `cwd`, with no variables of their own. */
const run = (args: string[], cwd: string) => runCli(args, { cwd });

describe('appvisor backup, restore and clone', () => {
  let cwd: string;

  beforeAll(async () => {
    cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-cli-ops-'));
    await fs.mkdir(path.join(cwd, 'apps.d'));
    await fs.writeFile(
      path.join(cwd, 'apps.d', 'crm.yaml'),
      'apiVersion: appvisor/v1\nkind: App\nname: crm\n',
    );
    expect((await run(['apply'], cwd)).code).toBe(0);
  });
  afterAll(() => fs.rm(cwd, { recursive: true, force: true }));

  it('backs up into backups/ and says what it wrote', async () => {
    const { code, stdout } = await run(['backup', 'crm'], cwd);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^backed up app crm: \d+(\.\d)? (B|KiB|MiB) in \d+\.\d s \(.+\/s\) → backups\/crm-\d{8}T\d{6}Z\.tar\.gz$/m,
    );
    expect(stdout).toMatch(
      /^ {2}members meta\.json, manifest\.yaml, data\.sqlite, secret\.json; data version 2$/m,
    );
    const json = await run(['backup', 'crm', '-o', 'out/crm.tar.gz', '--json'], cwd);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      file: path.join(cwd, 'out', 'crm.tar.gz'),
      bytes: expect.any(Number),
    });
    // The master key stays out of the archive and in the data folder, 0600.
    expect((await fs.stat(path.join(cwd, 'data', 'master-key'))).mode & 0o777).toBe(0o600);
  });

  it('restores with --yes only, and clones into a new app with its manifest written', async () => {
    const refused = await run(['restore', 'out/crm.tar.gz'], cwd);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/pass --yes/);
    const restored = await run(['restore', 'out/crm.tar.gz', '--yes'], cwd);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(/^restored app crm: .* ← out\/crm\.tar\.gz\n {2}data version 2$/m);

    const cloned = await run(['clone', 'crm', 'crm-copy'], cwd);
    expect(cloned.code).toBe(0);
    // Run here, the clone counts the archive's bytes as they pass: its final line says how many.
    expect(cloned.stdout).toMatch(
      /^cloned app crm into new app crm-copy: [\d.]+ (B|KiB|MiB) in [\d.]+ s \([\d.]+ (B|KiB|MiB)\/s\)\n {2}data version 2\n/,
    );
    expect(cloned.stdout).toMatch(/manifest written to apps\.d\/crm-copy\.yaml/);
    expect(cloned.stdout).toMatch(/it has a new secret: tokens of crm do not open it/);
    expect(await fs.readFile(path.join(cwd, 'apps.d', 'crm-copy.yaml'), 'utf8')).toMatch(/^name: crm-copy$/m);
    expect((await run(['plan'], cwd)).code).toBe(0);

    const again = await run(['restore', 'out/crm.tar.gz', '--as', 'crm-copy'], cwd);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/an app named crm-copy exists already/);
    const unknown = await run(['backup', 'nope'], cwd);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no app named nope/);
    const missing = await run(['restore', 'missing.tar.gz', '--yes'], cwd);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/backup archive .*missing\.tar\.gz is unusable/);
  });
});
