/** The `appvisor` CLI run in-process, as a user runs it: its exit code and what it printed. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CliIO } from '../../src/cli/common.js';
import { main } from '../../src/cli/main.js';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCli(
  args: readonly string[],
  opts: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv; readonly tty?: boolean },
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (s: string) => (stdout += s), isTTY: opts.tty ?? false },
    stderr: { write: (s: string) => (stderr += s), isTTY: opts.tty ?? false },
    env: opts.env ?? {},
    cwd: opts.cwd,
  };
  const code = await main([...args], io);
  return { code, stdout, stderr };
}

const BIN = fileURLToPath(new URL('../../bin/appvisor.js', import.meta.url));

/**
 * `bin/appvisor.js` (the built CLI in dist/: run `npm run build` first) in a process of its own,
 * with only PATH and HOME of this process's environment besides `env`.
 */
export function runBin(
  args: readonly string[],
  opts: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv },
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: opts.cwd,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
