/**
 * Progress where people wait: `apply`'s bar and `backup`/`restore`'s live byte line on a
 * terminal (the CLI in-process on a fake TTY), and plain lines only when the output is not a
 * terminal (`bin/appvisor.js` as a process, its stdout a pipe, as in a CI log). SQLite here;
 * backup and restore on PostgreSQL too.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROGRESS_MIN_STEPS } from '../../src/cli/apply-progress.js';
import type { CliIO } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';
import { formatBytes } from '../../src/cli/transfer-progress.js';
import {
  dropPgDatabasesOf,
  PG_URL,
  postgres,
  uniqueName,
  urlWithDatabase,
  withPgClient,
} from '../helpers/servers.js';
import { manifest } from '../serve/harness.js';

const BIN = fileURLToPath(new URL('../../bin/appvisor.js', import.meta.url));
const PG = await postgres();
const ESC = '\u001b';

/** The CLI in-process on a fake terminal 100 columns wide: its exit code and every byte it wrote. */
async function onTerminal(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: Object.assign({ write: (t: string) => (stdout += t), isTTY: true }, { columns: 100 }),
    stderr: { write: (t: string) => (stderr += t), isTTY: true },
    env,
    cwd,
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** `bin/appvisor.js` as a process: stdout is a pipe, not a terminal. */
async function asProcess(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const run = promisify(execFile);
  const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH, ...env },
  });
  return { stdout, stderr };
}

/**
 * What a terminal would show at the end, line by line: text overwrites from the cursor, `\r` and
 * `ESC[nG` go back to the line's start, `ESC[2K` erases the line, `ESC[K` / `ESC[J` the rest of it;
 * other escape sequences (colour, cursor show/hide) leave no text.
 */
function screen(text: string): string[] {
  return text
    .split('\n')
    .map((raw) => {
      let line = '';
      let cursor = 0;
      const token = new RegExp(`\\r|${ESC}\\[([0-9;?]*)([A-Za-z])|${ESC}[78]|[^\\r${ESC}]+`, 'g');
      for (const m of raw.matchAll(token)) {
        if (m[0] === '\r' || m[2] === 'G') cursor = 0;
        else if (m[2] === 'K' && m[1] === '2') line = '';
        else if (m[2] === 'K' || m[2] === 'J') line = line.slice(0, cursor);
        else if (m[2] === undefined && !m[0].startsWith(ESC)) {
          line = line.slice(0, cursor) + m[0] + line.slice(cursor + m[0].length);
          cursor += m[0].length;
        }
      }
      return line;
    })
    .filter((line) => line !== '');
}

async function tempDir(prefix: string, apps: Record<string, string>): Promise<string> {
  const cwd = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.mkdir(path.join(cwd, 'apps.d'));
  for (const [name, text] of Object.entries(apps))
    await fs.writeFile(path.join(cwd, 'apps.d', `${name}.yaml`), text);
  return cwd;
}

/** Enough apps for a plan of more than PROGRESS_MIN_STEPS steps (three or more each). */
function manyApps(): Record<string, string> {
  const apps: Record<string, string> = {};
  for (let i = 1; i <= Math.ceil(PROGRESS_MIN_STEPS / 3) + 1; i++) {
    const name = `app${String(i).padStart(2, '0')}`;
    apps[name] = manifest(name);
  }
  return apps;
}

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

describe('apply progress', () => {
  it('draws a bar on a terminal under the step lines, and ends with the summary line', async () => {
    const cwd = await tempDir('appvisor-progress-tty-', manyApps());
    dirs.push(cwd);
    const { code, stdout } = await onTerminal(['apply'], cwd);
    expect(code).toBe(0);
    // Frames of the bar: steps done of those planned, the app, elapsed and ETA.
    const frames = stdout.match(/\d+\/\d+ steps \| app\d\d \| \S+ elapsed, ETA \S+/g) ?? [];
    expect(frames.length).toBeGreaterThan(0);
    const [, total] = /\d+\/(\d+) steps/.exec(frames[0]!)!;
    expect(Number(total)).toBeGreaterThanOrEqual(PROGRESS_MIN_STEPS);
    // The bar is cleared at the end: what stays is each step's line and the summary, last.
    const shown = screen(stdout);
    expect(shown.at(-1)).toMatch(/^\d+ steps done, 0 apps failed\.$/);
    expect(shown.filter((l) => /^\+ app\d\d create-database created/.test(l))).toHaveLength(
      Object.keys(manyApps()).length,
    );
    expect(shown.some((l) => l.includes(' steps | '))).toBe(false);
    // Colour is on at a terminal; NO_COLOR turns it off but keeps the bar (cursor moves are not colour).
    expect(stdout).toContain(`${ESC}[32mcreated`);
  });

  it('prints plain lines only when stdout is not a terminal', async () => {
    const cwd = await tempDir('appvisor-progress-plain-', manyApps());
    dirs.push(cwd);
    const { stdout } = await asProcess(['apply'], cwd);
    expect(stdout).not.toContain('\r');
    expect(stdout).not.toContain(ESC);
    const lines = stdout.trimEnd().split('\n');
    // A progress line as each app begins, the step lines, and the summary last.
    expect(lines.filter((l) => /^\[\d+\/\d+ steps done, \d+ s\] app\d\d$/.test(l))).toHaveLength(
      Object.keys(manyApps()).length,
    );
    expect(lines).toContainEqual(expect.stringMatching(/^\+ app01 create-database created/));
    expect(lines.at(-1)).toMatch(/^\d+ steps done, 0 apps failed\.$/);
  });

  it('shows no progress for a short plan', async () => {
    const cwd = await tempDir('appvisor-progress-short-', { crm: manifest('crm') });
    dirs.push(cwd);
    const { stdout } = await onTerminal(['apply'], cwd, { NO_COLOR: '1' });
    expect(stdout).not.toContain('\r');
    expect(stdout).not.toContain(ESC);
    expect(stdout.trimEnd().split('\n').at(-1)).toMatch(/^\d+ steps done, 0 apps failed\.$/);
  });
});

/**
 * Backs up `app` and restores it, on a terminal and as a process, checking the live lines and
 * the final ones; the byte count in a final line is the archive's size on disk.
 */
async function backupAndRestore(cwd: string, app: string, env: NodeJS.ProcessEnv): Promise<void> {
  const tty = await onTerminal(['backup', app, '-o', 'out/a.tar.gz'], cwd, env);
  expect(tty.stderr).toBe('');
  expect(tty.code).toBe(0);
  const size = (await fs.stat(path.join(cwd, 'out', 'a.tar.gz'))).size;
  // A live line while the data is dumped and the archive written, redrawn in place.
  expect(tty.stdout).toMatch(
    new RegExp(`\\r${ESC}\\[2Kbacking up ${app}: (dumping the data|writing the archive), \\d`),
  );
  const finalBackup = new RegExp(
    `^backed up app ${app}: ${formatBytes(size).replace('.', '\\.')} in \\d+\\.\\d s \\(\\d+(\\.\\d)? (B|KiB|MiB|GiB)/s\\) → out/a\\.tar\\.gz$`,
  );
  expect(screen(tty.stdout)[0]).toMatch(finalBackup);

  const restored = await onTerminal(['restore', 'out/a.tar.gz', '--yes'], cwd, env);
  expect(restored.stderr).toBe('');
  expect(restored.code).toBe(0);
  expect(restored.stdout).toMatch(
    new RegExp(
      `\\r${ESC}\\[2Krestoring a\\.tar\\.gz: reading the archive, .* of ${formatBytes(size).replace('.', '\\.')}`,
    ),
  );
  expect(screen(restored.stdout)).toEqual([
    expect.stringMatching(
      new RegExp(
        `^restored app ${app}: ${formatBytes(size).replace('.', '\\.')} in \\d+\\.\\d s \\(.+/s\\) ← out/a\\.tar\\.gz$`,
      ),
    ),
    expect.stringMatching(/^ {2}data version \d+$/),
  ]);

  // Not a terminal: the final lines only.
  const plain = await asProcess(['backup', app, '-o', 'out/b.tar.gz'], cwd, env);
  expect(plain.stdout).not.toContain('\r');
  expect(plain.stdout).not.toContain(ESC);
  const sizeB = (await fs.stat(path.join(cwd, 'out', 'b.tar.gz'))).size;
  expect(plain.stdout.split('\n')[0]).toMatch(
    new RegExp(`^backed up app ${app}: ${formatBytes(sizeB).replace('.', '\\.')} in .* → out/b\\.tar\\.gz$`),
  );
  const plainRestore = await asProcess(['restore', 'out/b.tar.gz', '--yes'], cwd, env);
  expect(plainRestore.stdout).not.toContain('\r');
  expect(plainRestore.stdout).not.toContain(ESC);
  expect(plainRestore.stdout).toMatch(
    new RegExp(`^restored app ${app}: .* ← out/b\\.tar\\.gz\\n {2}data version \\d+\\n$`),
  );

  // --json stays as it was: one object, no live line.
  const json = await onTerminal(['backup', app, '-o', 'out/c.tar.gz', '--json'], cwd, env);
  expect(json.stdout).not.toContain('\r');
  expect(JSON.parse(json.stdout)).toMatchObject({
    file: path.join(cwd, 'out', 'c.tar.gz'),
    bytes: expect.any(Number),
  });
}

describe('backup and restore progress', () => {
  it('on SQLite', async () => {
    const cwd = await tempDir('appvisor-progress-ops-', { crm: manifest('crm') });
    dirs.push(cwd);
    expect((await onTerminal(['apply'], cwd)).code).toBe(0);
    await backupAndRestore(cwd, 'crm', {});
  });

  describe.skipIf(!PG.available)('on PostgreSQL', () => {
    const prefix = uniqueName('avq');
    const app = `${prefix}_crm`;
    const env = { APPVISOR_DATABASE_URL: urlWithDatabase(PG_URL, `${prefix}_main`) };
    let cwd: string;

    beforeAll(async () => {
      await withPgClient(PG_URL, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(`${prefix}_main`)}`));
      cwd = await tempDir('appvisor-progress-pg-', { [app]: manifest(app) });
      dirs.push(cwd);
    });
    afterAll(() => dropPgDatabasesOf(prefix));

    it('shows the bytes of the dump and the archive', async () => {
      expect((await onTerminal(['apply'], cwd, env)).code).toBe(0);
      await backupAndRestore(cwd, app, env);
    });
  });
});
