/**
 * `plan --format markdown` and examples/ci/plan-comment.sh against the fixture repo
 * test/fixtures/plan-markdown: `applied/` is applied on SQLite in a temp folder, then replaced
 * by `pr/` (a pull request that adds, changes, removes, breaks and refuses apps).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { postgres } from '../helpers/servers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = path.join(ROOT, 'test/fixtures/plan-markdown');
const SCRIPT = path.join(ROOT, 'examples/ci/plan-comment.sh');
const BIN = `node ${path.join(ROOT, 'bin/appvisor.js')}`;
const PG = await postgres();

/** The unreachable server of the pr fixture's new-connection app, with a password that must never show. */
const EXT_URL = 'postgres://bob:hunter2@127.0.0.1:9/x';

async function useManifests(cwd: string, set: 'applied' | 'pr'): Promise<void> {
  await fs.rm(path.join(cwd, 'apps.d'), { recursive: true, force: true });
  await fs.cp(path.join(FIXTURE, set), path.join(cwd, 'apps.d'), { recursive: true });
}

/** The plan without what changes from run to run: the temp folder and the due times. */
function stable(text: string, cwd: string): string {
  return text.replaceAll(cwd, '<tmp>').replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g, '<due>');
}

async function runScript(
  cwd: string,
  args: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('bash', [SCRIPT, ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, APPVISOR_BIN: BIN, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('plan --format markdown on a pull request', () => {
  let cwd: string;

  beforeAll(async () => {
    cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-plan-md-'));
    await useManifests(cwd, 'applied');
    const applied = await runCli(['apply'], { cwd });
    expect(applied.code, applied.stderr).toBe(0);
    await useManifests(cwd, 'pr');
  });
  afterAll(() => fs.rm(cwd, { recursive: true, force: true }));

  it('shows every kind of step, refusals and removals first, and exits as plan does', async () => {
    const run = await runCli(['plan', '--format', 'markdown'], { cwd, env: { EXT_URL } });
    // An invalid manifest and an unreachable server leave the plan incomplete.
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).not.toContain('hunter2');
    expect(run.stdout).toContain('postgres://bob@127.0.0.1:9');
    await expect(stable(run.stdout, cwd)).toMatchFileSnapshot('../fixtures/plan-markdown/plan.md');
  });

  it('--json is --format json; an unknown format is a usage error naming the three', async () => {
    const json = await runCli(['plan', '--json'], { cwd, env: { EXT_URL } });
    const format = await runCli(['plan', '--format', 'json'], { cwd, env: { EXT_URL } });
    expect(stable(format.stdout, cwd)).toBe(stable(json.stdout, cwd));
    expect(format.code).toBe(json.code);
    const unknown = await runCli(['plan', '--format', 'md'], { cwd, env: { EXT_URL } });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/argument 'md' is invalid\. Allowed choices are text, json, markdown/);
    expect(unknown.stdout).toBe('');
    const both = await runCli(['plan', '--json', '--format', 'markdown'], { cwd, env: { EXT_URL } });
    expect(both).toMatchObject({ code: 1, stdout: '' });
    expect(both.stderr).toContain('--json means --format json');
  });

  it('shows the empty-set guard when no valid manifest is left', async () => {
    const empty = path.join(cwd, 'empty.d');
    await fs.mkdir(empty, { recursive: true });
    const run = await runCli(['plan', '--format', 'markdown', '--dir', empty], { cwd });
    expect(run.code).toBe(2);
    expect(run.stdout).toContain(
      '> **Held back:** no valid manifest is left but 5 app(s) are known; nothing is removed',
    );
    expect(run.stdout).toMatch(/\n0 to create, 0 to change, 0 to remove, 5 refused\n/);
  });

  it.skipIf(!PG.available)('never shows the password of a reachable new-connection URL', async () => {
    const u = new URL(PG.url);
    u.password = 'hunter2';
    u.pathname = '';
    const run = await runCli(['plan', '--format', 'markdown'], { cwd, env: { EXT_URL: u.toString() } });
    expect(run.stdout).toMatch(
      /\| \+ \| ext \| create-database \| database ext on postgres postgres:\/\/[^|]*:\\\*\\\*\\\*@/,
    );
    expect(run.stdout + run.stderr).not.toContain('hunter2');
  });
});

describe('examples/ci/plan-comment.sh', () => {
  let cwd: string;

  beforeAll(async () => {
    cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-plan-comment-'));
    await useManifests(cwd, 'applied');
  });
  afterAll(() => fs.rm(cwd, { recursive: true, force: true }));

  it('writes the comment and exits 0 with changes and without, 1 when the plan is incomplete', async () => {
    const pending = await runScript(cwd);
    expect(pending.code, pending.stderr).toBe(0);
    expect(pending.stdout).toMatch(
      /^### appvisor plan\n\n16 to create, 5 to change, 0 to remove, 0 refused\n/,
    );
    // 21 steps: the full list is folded.
    expect(pending.stdout).toContain('<summary>All 21 steps</summary>');
    expect(pending.stdout).toMatch(/\n---\n_Changes pending: .*_\n$/);

    expect((await runCli(['apply'], { cwd })).code).toBe(0);
    const file = path.join(cwd, 'comment.md');
    const none = await runScript(cwd, [file]);
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(await fs.readFile(file, 'utf8')).toMatch(/No changes\.\n\n---\n_No changes: .*_\n$/);

    // Options after -- reach plan: here the pull request's manifests, one of them broken.
    const broken = await runScript(cwd, ['-', '--', '--dir', path.join(FIXTURE, 'pr')], { EXT_URL });
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('**Manifest errors**');
    expect(broken.stdout).toMatch(/\n_The plan is incomplete \(exit 1\): .*_\n$/);
    expect(broken.stdout + broken.stderr).not.toContain('hunter2');

    const badOption = await runScript(cwd, ['-', '--', '--no-such-option']);
    expect(badOption.code).toBe(1);
    expect(badOption.stderr).toContain("unknown option '--no-such-option'");
    expect(badOption.stdout).toMatch(/^---\n_The plan is incomplete \(exit 1\)/);
  });

  it('with APPVISOR_STATE plans against the state file, offline: the same comment with no database there', async () => {
    const exported = await runCli(['state', 'export'], { cwd });
    expect(exported.code, exported.stderr).toBe(0);
    await fs.writeFile(path.join(cwd, 'state.json'), exported.stdout);
    // The pull request without its broken manifest and its new-connection app (whose server the
    // export cannot know).
    const pr = path.join(cwd, 'pr.d');
    await fs.cp(path.join(FIXTURE, 'pr'), pr, { recursive: true });
    await fs.rm(path.join(pr, 'ext.yaml'));
    await fs.rm(path.join(pr, 'wiki.yaml'));
    const online = await runScript(cwd, ['-', '--', '--dir', pr]);
    expect(online.code, online.stderr).toBe(0);
    expect(online.stdout).toMatch(
      /^### appvisor plan\n\n\d+ to create, \d+ to change, \d+ to remove, 1 refused\n/,
    );
    const data = path.join(cwd, 'data');
    await fs.rename(data, `${data}.away`);
    try {
      const offline = await runScript(cwd, ['-', '--', '--dir', pr], { APPVISOR_STATE: 'state.json' });
      expect(offline.code, offline.stderr).toBe(0);
      expect(stable(offline.stdout, cwd)).toBe(stable(online.stdout, cwd));
      const missing = await runScript(cwd, ['-', '--', '--dir', pr], { APPVISOR_STATE: 'missing.json' });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('state file missing.json: cannot be read (no such file)');
      expect(missing.stdout).toMatch(/^---\n_The plan is incomplete \(exit 1\)/);
    } finally {
      await fs.rename(`${data}.away`, data);
    }
  });
});
