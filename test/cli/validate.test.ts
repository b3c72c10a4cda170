import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { manifest, tempDir, writeFiles } from '../manifests/helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the CLI in-process and captures what it prints. */

describe('appvisor validate', () => {
  let cwd: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ({ dir: cwd, cleanup } = await tempDir('appvisor-cli-'));
    await mkdir(path.join(cwd, 'apps.d'));
    await writeFiles(path.join(cwd, 'apps.d'), { 'a.yaml': manifest('a'), 'b.yml': manifest('b') });
    await mkdir(path.join(cwd, 'broken'));
    await writeFiles(path.join(cwd, 'broken'), {
      'ok.yaml': manifest('ok'),
      'typo.yaml': manifest('typo', 'startMode: with-mian'),
      'z-syntax.yaml': manifest('zs', 'domains: [a'),
      'dup.yaml': manifest('dup', 'kind: App'),
    });
  });
  afterAll(() => cleanup());

  it('prints a summary and exits 0 when every manifest is valid', async () => {
    expect(await runCli(['validate'], { cwd })).toEqual({
      code: 0,
      stdout: '2 manifests valid in apps.d\n',
      stderr: '',
    });
  });

  it('prints every error as file:line:col: message, sorted, then a summary, and exits 1', async () => {
    const { code, stdout, stderr } = await runCli(['validate', '--dir', 'broken'], { cwd });
    expect(code).toBe(1);
    expect(stderr).toBe('');
    expect(stdout.split('\n')).toEqual([
      "broken/dup.yaml:4:1: duplicate key 'kind' (already set on line 2)",
      "broken/typo.yaml:4:12: startMode 'with-mian' is not one of: on-first-visit, with-main; did you mean 'with-main'?",
      expect.stringMatching(/^broken\/z-syntax\.yaml:5:1: YAML syntax error: /),
      '3 of 4 manifests invalid in broken',
      '',
    ]);
  });

  it('prints the errors as JSON with --json', async () => {
    const { code, stdout } = await runCli(['validate', '--dir', 'broken', '--json'], { cwd });
    expect(code).toBe(1);
    const parsed = JSON.parse(stdout) as { errors: unknown[]; apps: string[] };
    expect(parsed.apps).toEqual(['ok']);
    expect(parsed.errors).toHaveLength(3);
    expect(parsed.errors[0]).toEqual({
      file: 'broken/dup.yaml',
      line: 4,
      column: 1,
      message: "duplicate key 'kind' (already set on line 2)",
    });
  });

  it('prints an empty error list with --json when all are valid', async () => {
    const { code, stdout } = await runCli(['validate', '--json'], { cwd });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ errors: [], apps: ['a', 'b'] });
  });

  it('takes the apps folder from the environment and from appvisor.yaml (--config)', async () => {
    expect((await runCli(['validate'], { cwd, env: { APPVISOR_APPS_DIR: 'broken' } })).code).toBe(1);
    await writeFile(path.join(cwd, 'custom.yaml'), 'appsDir: broken\n');
    const { code, stdout } = await runCli(['validate', '--config', 'custom.yaml'], { cwd });
    expect(code).toBe(1);
    expect(stdout).toContain('3 of 4 manifests invalid in broken');
  });

  it('says so when the apps folder does not exist', async () => {
    expect(await runCli(['validate', '--dir', 'nope'], { cwd })).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'appvisor: apps folder nope does not exist (set it with --dir, APPVISOR_APPS_DIR or appsDir in appvisor.yaml)\n',
    });
  });

  it('reports an invalid setting as appvisor: <message>', async () => {
    const { code, stderr } = await runCli(['validate'], { cwd, env: { APP_PROCESS_ADAPTER: 'docker' } });
    expect(code).toBe(1);
    expect(stderr).toBe('appvisor: APP_PROCESS_ADAPTER=docker is not supported; supported: local\n');
  });

  it('refuses an application the settings do not list, at the value, naming the known ones', async () => {
    await mkdir(path.join(cwd, 'picks'), { recursive: true });
    await writeFiles(path.join(cwd, 'picks'), {
      'desk.yaml': manifest('desk', 'application: crmm'),
      'book.yaml': manifest('book', 'application: guestbook'),
      'notes.yaml': manifest('notes'),
    });
    // Only the names are checked: validate imports no application module.
    await writeFile(
      path.join(cwd, 'two-apps.yaml'),
      'applications:\n  guestbook: ./apps/guestbook.mjs\n  crm: ./apps/crm.mjs\n',
    );
    const run = await runCli(['validate', '--dir', 'picks', '--config', 'two-apps.yaml'], { cwd });
    expect(run.code).toBe(1);
    expect(run.stdout.split('\n')).toEqual([
      "picks/desk.yaml:4:14: application 'crmm' is not listed under applications in appvisor.yaml (known: crm, guestbook); did you mean 'crm'?; or remove application to run the default one",
      '1 of 3 manifests invalid in picks',
      '',
    ]);
    // Without settings applications, any application is unknown, and the error says how to add one.
    const none = await runCli(['validate', '--dir', 'picks'], { cwd });
    expect(none.stdout).toContain(
      "picks/book.yaml:4:14: application 'guestbook' is not listed under applications in appvisor.yaml (settings applications lists none (add applications: { <name>: <module> } to appvisor.yaml))",
    );
  });

  it('refuses new-schema on a main database that is not PostgreSQL, at the mode, naming the main database', async () => {
    await mkdir(path.join(cwd, 'schemas'), { recursive: true });
    await writeFiles(path.join(cwd, 'schemas'), {
      'crm.yaml': manifest('crm', 'database:', '  mode: new-schema', '  schema: crm_s'),
      'ok.yaml': manifest('ok'),
    });
    const fix =
      'set APPVISOR_DATABASE_URL or database.url in appvisor.yaml to a postgres://user:password@host:port/db URL, or choose another database.mode';
    const byDefault = await runCli(['validate', '--dir', 'schemas'], { cwd });
    expect(byDefault.code).toBe(1);
    expect(byDefault.stdout.split('\n')).toEqual([
      `schemas/crm.yaml:5:9: new-schema needs a PostgreSQL main database; the main database is sqlite (sqlite:data/main.sqlite, the default); ${fix}`,
      '1 of 2 manifests invalid in schemas',
      '',
    ]);
    // The settings name the main database: the environment, or appvisor.yaml.
    const fromEnv = await runCli(['validate', '--dir', 'schemas', '--json'], {
      cwd,
      env: { APPVISOR_DATABASE_URL: 'mysql://root:hunter2@127.0.0.1:3306/appvisor' },
    });
    expect(fromEnv.code).toBe(1);
    expect(JSON.parse(fromEnv.stdout)).toEqual({
      errors: [
        {
          file: 'schemas/crm.yaml',
          line: 5,
          column: 9,
          message: `new-schema needs a PostgreSQL main database; the main database is mysql (mysql://root:***@127.0.0.1:3306/appvisor, from APPVISOR_DATABASE_URL); ${fix}`,
        },
      ],
      apps: ['ok'],
    });
    await writeFile(path.join(cwd, 'sqlite-main.yaml'), 'database: { url: "sqlite:db/state.sqlite" }\n');
    const fromFile = await runCli(['validate', '--dir', 'schemas', '--config', 'sqlite-main.yaml'], { cwd });
    expect(fromFile.stdout).toContain(
      'the main database is sqlite (sqlite:db/state.sqlite, from database.url in sqlite-main.yaml)',
    );
    // On a PostgreSQL main database it is valid (validate connects to nothing).
    const onPostgres = await runCli(['validate', '--dir', 'schemas'], {
      cwd,
      env: { APPVISOR_DATABASE_URL: 'postgres://u@127.0.0.1:9/main' },
    });
    expect(onPostgres).toEqual({ code: 0, stdout: '2 manifests valid in schemas\n', stderr: '' });
  });

  it('uses colour on a terminal only, and never with NO_COLOR', async () => {
    const esc = '\u001b[';
    expect((await runCli(['validate', '--dir', 'broken'], { cwd, tty: true })).stdout).toContain(esc);
    expect(
      (await runCli(['validate', '--dir', 'broken'], { cwd, tty: true, env: { NO_COLOR: '1' } })).stdout,
    ).not.toContain(esc);
    expect((await runCli(['validate', '--dir', 'broken'], { cwd, tty: false })).stdout).not.toContain(esc);
  });

  it.each([[['--help']], [['validate', '--help']], [['help', 'validate']]])(
    '%j prints usage and exits 0',
    async (args) => {
      const { code, stdout } = await runCli(args, { cwd });
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: appvisor/);
    },
  );

  it('lists the options of validate in its help', async () => {
    const { stdout } = await runCli(['validate', '--help'], { cwd });
    for (const option of ['--dir <dir>', '--config <file>', '--json']) expect(stdout).toContain(option);
  });

  it('prints the version', async () => {
    const { code, stdout } = await runCli(['--version'], { cwd });
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('exits 1 on an unknown option or command', async () => {
    const option = await runCli(['validate', '--bogus'], { cwd });
    expect(option.code).toBe(1);
    expect(option.stderr).toContain("unknown option '--bogus'");
    expect((await runCli(['frobnicate'], { cwd })).code).toBe(1);
  });
});

describe('appvisor validate as a process', () => {
  const exec = promisify(execFile);
  const cli = ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];

  it('validates the example manifests in apps.d and exits 0', async () => {
    const { stdout } = await exec(process.execPath, [...cli, 'validate'], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(stdout).toMatch(/^\d+ manifests valid in apps\.d\n$/);
  });

  it('exits 1 with line and column for a folder of broken files', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFiles(dir, { 'bad.yaml': manifest('bad', 'enabled: nope') });
      const err = (await exec(process.execPath, [...cli, 'validate', '--dir', dir], { cwd: ROOT }).catch(
        (e: unknown) => e,
      )) as { code: number; stdout: string };
      expect(err.code).toBe(1);
      expect(err.stdout).toContain(
        `${path.join(dir, 'bad.yaml')}:4:10: enabled must be true or false, got 'nope'`,
      );
    } finally {
      await cleanup();
    }
  });
});
