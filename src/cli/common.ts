import path from 'node:path';
import type { Command } from 'commander';
import { loadSettings } from '../config/settings.js';
import type { Settings } from '../config/types.js';
import { AppvisorError } from '../errors.js';

/** Where a command writes: process streams in production, buffers in tests. */
export interface CliOutput {
  write(chunk: string): unknown;
  readonly isTTY?: boolean;
}

/** The world a command runs in. */
export interface CliIO {
  readonly stdout: CliOutput;
  readonly stderr: CliOutput;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** CliIO plus the exit code the commands set. */
export interface CliContext extends CliIO {
  exitCode: number;
}

/** The options `--config`, `--dir` and `--json` add. */
export interface CommonOptions {
  readonly config?: string;
  readonly dir?: string;
  readonly json?: boolean;
}

/** The real process. A closed stdout (`appvisor validate | head`) is not an error. */
export function processIO(): CliIO {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

export function createContext(io: CliIO): CliContext {
  return { ...io, exitCode: 0 };
}

/** `--config FILE`: appvisor.yaml to read instead of the one in the working directory. */
export function withConfigOption(cmd: Command): Command {
  return cmd.option('--config <file>', 'settings file to read (default: ./appvisor.yaml when present)');
}

/** `--dir DIR`: the apps folder, overriding APPVISOR_APPS_DIR and appsDir. */
export function withDirOption(cmd: Command): Command {
  return cmd.option(
    '--dir <dir>',
    'apps folder with the manifests (default: apps.d, or APPVISOR_APPS_DIR / appsDir)',
  );
}

/** `--json`: machine-readable output on stdout. */
export function withJsonOption(cmd: Command): Command {
  return cmd.option('--json', 'print JSON instead of text');
}

/** Settings for a command, from appvisor.yaml, the environment and `--config` / `--dir`. */
export function settingsFor(ctx: CliIO, opts: CommonOptions): Promise<Settings> {
  return loadSettings({ configFile: opts.config, appsDir: opts.dir, env: ctx.env, cwd: ctx.cwd });
}

/** The apps folder as the user would type it: `--dir` as given, else relative to the working directory. */
export function displayAppsDir(ctx: CliIO, settings: Settings, opts: CommonOptions): string {
  if (opts.dir !== undefined) return opts.dir;
  const relative = path.relative(ctx.cwd, settings.appsDir);
  if (relative === '') return '.';
  return relative.startsWith('..') || path.isAbsolute(relative) ? settings.appsDir : relative;
}

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colorEnabled(out: CliOutput, env: NodeJS.ProcessEnv): boolean {
  return out.isTTY === true && env.NO_COLOR === undefined;
}

/** ANSI styles, or identity functions when colour is off. */
export interface Styles {
  readonly bold: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly red: (text: string) => string;
  readonly green: (text: string) => string;
  readonly yellow: (text: string) => string;
}

export function styles(enabled: boolean): Styles {
  const style =
    (open: number, close: number) =>
    (text: string): string =>
      enabled ? `\u001b[${open}m${text}\u001b[${close}m` : text;
  return {
    bold: style(1, 22),
    dim: style(2, 22),
    red: style(31, 39),
    green: style(32, 39),
    yellow: style(33, 39),
  };
}

/** Writes one line. */
export function println(out: CliOutput, line = ''): void {
  out.write(`${line}\n`);
}

/**
 * Prints an error as `appvisor: <message>` (each line of a multi-line message prefixed) on
 * stderr. Unexpected errors show their stack when APPVISOR_DEBUG is set.
 */
export function printError(ctx: CliIO, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  for (const line of message.split('\n')) println(ctx.stderr, `appvisor: ${line}`);
  if (!(err instanceof AppvisorError) && err instanceof Error && ctx.env.APPVISOR_DEBUG && err.stack) {
    println(ctx.stderr, err.stack);
  }
}

/**
 * Wraps a command's action: its result is the exit code; a thrown error is printed with
 * {@link printError} and exits 1.
 */
export function action<Args extends unknown[]>(
  ctx: CliContext,
  run: (...args: Args) => Promise<number> | number,
): (...args: Args) => Promise<void> {
  return async (...args: Args) => {
    try {
      ctx.exitCode = await run(...args);
    } catch (err) {
      printError(ctx, err);
      ctx.exitCode = 1;
    }
  };
}
