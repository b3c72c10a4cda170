/**
 * Running a database client tool (`pg_dump`, `pg_restore`, `mariadb-dump`, `mariadb`) for a data
 * transfer: spawned without a shell, its stdin and stdout streamed (a dump is never held in
 * memory), its stderr kept (the last few KiB) for the error, credentials passed by environment
 * only. A tool that is not on PATH is TOOL_MISSING naming its Debian package.
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppvisorError } from '../errors.js';

/** A client tool and the Debian package that installs it. */
export interface Tool {
  readonly command: string;
  readonly debianPackage: string;
}

export interface RunToolOptions {
  readonly args: readonly string[];
  /** Added to the process environment (passwords go here, never in `args`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Streamed into the tool's stdin, then stdin is closed; without it stdin is empty. */
  readonly stdin?: Readable;
  /** Receives the tool's stdout (ended when the tool's stdout ends); without it stdout is collected. */
  readonly stdout?: Writable;
  readonly signal?: AbortSignal;
  /** What the tool does, for the error: `pg_dump of database "shop"`. */
  readonly what: string;
}

/** A tool that ran and exited non-zero (or was killed); `stderr` is the tail of what it printed. */
export class ToolFailedError extends Error {
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    readonly signalName: NodeJS.Signals | null,
    readonly stderr: string,
    what: string,
  ) {
    const how = signalName ? `was killed by ${signalName}` : `exited with code ${exitCode}`;
    super(`${what}: ${tool} ${how}${stderr ? `: ${stderr}` : ''}`);
    this.name = 'ToolFailedError';
  }
}

/** Most stderr kept for the error message. */
const STDERR_TAIL = 4096;

export function toolMissing(tool: Tool): AppvisorError {
  return new AppvisorError('TOOL_MISSING', { tool: tool.command, package: tool.debianPackage });
}

/**
 * Runs `tool` to completion. Resolves with the collected stdout (empty when `opts.stdout` took it)
 * once the tool exited 0 and every stream finished; rejects with TOOL_MISSING when the tool is not
 * on PATH, with a {@link ToolFailedError} when it exits non-zero, or with the stream's error.
 */
export async function runTool(tool: Tool, opts: RunToolOptions): Promise<string> {
  const child = spawn(tool.command, [...opts.args], {
    env: { ...process.env, ...opts.env },
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  // stdout and stderr are pipes (the stdio option above).
  const stdout = child.stdout!;
  const errors = child.stderr!;
  let stderr = '';
  errors.setEncoding('utf8');
  errors.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL);
  });
  const chunks: Buffer[] = [];
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? toolMissing(tool) : err);
    });
    child.once('close', (code, signalName) => {
      if (code === 0) resolve();
      else reject(new ToolFailedError(tool.command, code, signalName, stderr.trim(), opts.what));
    });
  });
  const streams: Promise<void>[] = [];
  if (opts.stdin && child.stdin) {
    const stdin = child.stdin;
    // A tool that exits early closes its stdin: EPIPE then, and the exit code tells why.
    stdin.on('error', () => undefined);
    streams.push(pipeline(opts.stdin, stdin).catch(() => undefined));
  }
  if (opts.stdout) streams.push(pipeline(stdout, opts.stdout));
  else stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  // The exit decides first: a failed tool's error beats the broken pipe it caused.
  const [exit, ...rest] = await Promise.allSettled([exited, ...streams]);
  if (opts.signal?.aborted) throw opts.signal.reason;
  if (exit!.status === 'rejected') throw exit!.reason;
  for (const r of rest) if (r.status === 'rejected') throw r.reason;
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Whether `tool` runs: `<tool> --version`'s first line, or TOOL_MISSING when it is not on PATH
 * (or is not runnable).
 */
export async function toolVersion(tool: Tool, signal?: AbortSignal): Promise<string> {
  try {
    const out = await runTool(tool, {
      args: ['--version'],
      what: `${tool.command} --version`,
      ...(signal ? { signal } : {}),
    });
    return out.split('\n')[0]!.trim();
  } catch (err) {
    if (err instanceof AppvisorError) throw err;
    throw toolMissing(tool);
  }
}

/**
 * A transfer's failure as a registry error: AppvisorErrors (TOOL_MISSING, an abort's reason) pass
 * through; a tool that failed is DB_OPERATION_FAILED with what it printed; anything else (a driver
 * error of the transfer's own SQL) goes to the dialect's `translate`.
 */
export function transferError(
  err: unknown,
  ctx: { dialect: string; server: string; operation: string },
  translate: (err: unknown, ctx: { server: string; operation: string }) => AppvisorError,
): AppvisorError {
  if (err instanceof AppvisorError) return err;
  if (err instanceof ToolFailedError) {
    return new AppvisorError(
      'DB_OPERATION_FAILED',
      { ...ctx, detail: err.message },
      { cause: err, retryable: false },
    );
  }
  return translate(err, { server: ctx.server, operation: ctx.operation });
}
