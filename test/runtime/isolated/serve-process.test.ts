/**
 * `appvisor serve` as a real process, built (`dist/`, plain .js hosts) and from sources (tsx):
 * worker and process apps answer, a SIGTERM stops every child process, and a SIGKILLed
 * supervisor leaves none behind (the child notices its IPC channel closed and exits).
 * Run `npm run build` first: the dist/ case uses the worktree's build.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type LogLine, onLogLines } from '../../helpers/log-lines.js';
import { manifest, request, waitFor } from '../../serve/harness.js';
import { FIXTURE, ROOT } from './helpers.js';

const BUILT = [path.join(ROOT, 'bin/appvisor.js'), 'serve'];
const SOURCES = ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli/main.ts'), 'serve'];

interface Proc {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  readonly exited: Promise<number | null>;
}

const procs: Proc[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startServe(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ proc: Proc; url: string; childPid: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-iso-proc-'));
  dirs.push(dir);
  await fs.mkdir(path.join(dir, 'apps.d'));
  await fs.writeFile(
    path.join(dir, 'apps.d', 'p.yaml'),
    manifest('p', 'startMode: with-main\nisolation: {mode: process}\n'),
  );
  await fs.writeFile(
    path.join(dir, 'apps.d', 'w.yaml'),
    manifest('w', 'startMode: with-main\nisolation: {mode: worker}\n'),
  );
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      APPVISOR_PORT: '0',
      APPVISOR_ADMIN_TOKEN: 'iso-proc-token-0123456789abcdef',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  onLogLines(child.stdout!, (line) => lines.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const proc = { child, lines, exited };
  procs.push(proc);
  const find = (match: (l: LogLine) => boolean, what: string) =>
    waitFor(() => lines.find(match), `${what} (stderr: ${stderr.slice(-500)})`, 30_000);
  const { url } = (await find((l) => l.msg === 'appvisor listening', 'the listening line')) as {
    url: string;
  };
  const started = await find((l) => l.app === 'p' && l.msg === 'app started', 'p started');
  await find((l) => l.app === 'w' && l.msg === 'app started', 'w started');
  return { proc, url, childPid: started.childPid as number };
}

describe.each([
  ['built (dist/)', BUILT],
  ['from sources (tsx)', SOURCES],
])('serve %s', (_label, args) => {
  it('runs worker and process apps; SIGTERM stops its child processes', async () => {
    const { proc, url, childPid } = await startServe(args);
    for (const app of ['p', 'w']) {
      const info = await request(url, `/apps/${app}/api/info`);
      expect(info.status).toBe(200);
      expect(info.body).toMatchObject({ name: app });
    }
    expect(childPid).not.toBe(proc.child.pid);
    expect(alive(childPid)).toBe(true);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(alive(childPid)).toBe(false);
  }, 60_000);

  it('a SIGKILLed supervisor leaves no child process behind', async () => {
    const { proc, childPid } = await startServe(args);
    expect(alive(childPid)).toBe(true);
    proc.child.kill('SIGKILL');
    await proc.exited;
    await waitFor(() => !alive(childPid), 'the orphaned child to exit', 5_000);
  }, 60_000);
});

describe('a supervisor started with --max-old-space-size (NODE_OPTIONS)', () => {
  it("still ends a worker app that leaks past its memoryLimitMb (V8's flag would override the worker's own limit)", async () => {
    const { proc, url } = await startServe(SOURCES, {
      NODE_OPTIONS: '--max-old-space-size=4096',
      APPVISOR_APP: FIXTURE,
    });
    const leak = await request(url, '/apps/w/alloc');
    expect(leak.status).toBe(503);
    expect(leak.body.error.code).toBe('APP_OUT_OF_MEMORY');
    const logged = await waitFor(
      () => proc.lines.find((l) => l.app === 'w' && l.code === 'APP_OUT_OF_MEMORY'),
      'the out-of-memory log line',
    );
    expect(logged).toMatchObject({ limitMb: 256 });
    expect(logged?.usedMb).toBeGreaterThan(256);
  }, 60_000);
});
