/**
 * `appvisor serve` as a real process, run from the sources (tsx), its JSON log lines on stdout
 * read as they come.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LogLine, onLogLines } from './log-lines.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = path.join(ROOT, 'src/cli/main.ts');
// Resolved here: `--import tsx` alone would look for tsx from the temp folder the process runs in.
const TSX = import.meta.resolve('tsx');

/** The sample app's module, for an application module that wraps it. */
export const SAMPLE_APP = new URL('../../src/sample-app/index.ts', import.meta.url).href;

export type { LogLine };

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  /** Resolves with the first log line (already seen or to come) that `match` accepts. */
  line(match: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `appvisor serve` in `cwd` on port 0 with `env` (and PATH) as its whole environment. */
export function startServeProcess(cwd: string, env: NodeJS.ProcessEnv): ServeProcess {
  const child = spawn(process.execPath, ['--import', TSX, CLI, 'serve'], {
    cwd,
    env: { PATH: process.env.PATH, APPVISOR_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  onLogLines(child.stdout!, (line) => {
    lines.push(line);
    for (const wake of waiters) wake();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    line(match, what, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = lines.find(match);
          if (found === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = lines.map((l) => l.msg).join(' | ');
          reject(new Error(`timed out waiting for ${what}; log: ${seen}; stderr: ${stderr}`));
        }, timeoutMs);
        waiters.add(check);
        check();
        void exited.then(() => {
          if (waiters.has(check)) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(new Error(`serve exited before ${what}; stderr: ${stderr}`));
          }
        });
      });
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
