/**
 * Starts an isolated app's host — a worker thread or a child process — and gives the runner one
 * shape for both: send, messages, exit, kill. Running from TypeScript sources (vitest,
 * `node --import tsx`), the host is `host.ts` and tsx is registered in the worker or child first;
 * from dist/ it is plain `host.js`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FromHost, ToHost } from './protocol.js';

/** How a host ended: an exit code or signal, and what it died of when the runtime said so. */
export interface HostExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** A worker's uncaught error (ERR_WORKER_OUT_OF_MEMORY among them). */
  readonly error?: { readonly code?: string; readonly message: string };
  /** The end of a child's stderr (V8 says "heap out of memory" there). */
  readonly stderr?: string;
}

export interface HostChannel {
  readonly pid: number | undefined;
  send(message: ToHost): void;
  /** Ends the host at once (worker.terminate(), SIGKILL). */
  kill(): void;
}

export interface HostListeners {
  message(message: FromHost): void;
  exit(exit: HostExit): void;
}

const here = fileURLToPath(import.meta.url);
const fromSources = here.endsWith('.ts');
const hostFile = path.join(path.dirname(here), fromSources ? 'host.ts' : 'host.js');

/** tsx's entry points, resolved once, only when running from sources. */
function tsx(): { loader: string; api: string } {
  const require = createRequire(import.meta.url);
  const root = path.dirname(require.resolve('tsx/package.json'));
  return {
    loader: pathToFileURL(path.join(root, 'dist', 'loader.mjs')).href,
    api: pathToFileURL(path.join(root, 'dist', 'esm', 'api', 'index.mjs')).href,
  };
}

/**
 * A flag that sets the V8 heap size would override a worker's resourceLimits (Node ignores them
 * then) or a child's own limit: neither inherits it.
 */
function withoutHeapFlags(args: readonly string[]): string[] {
  return args.filter((a) => !a.startsWith('--max-old-space-size') && !a.startsWith('--max-semi-space-size'));
}

/** The supervisor's settings an app's host may see: only the log level. */
const HOST_SETTINGS = new Set(['APPVISOR_LOG_LEVEL']);

/**
 * The host's environment: the supervisor's, less the heap flags and less its own settings —
 * APPVISOR_MASTER_KEY, APPVISOR_DATABASE_URL (the state store's credentials) and the rest are
 * the supervisor's, not the app's: an isolated app gets what its context hands it, and no key to
 * the other apps' secrets. (Isolation contains faults; the host still runs as the same user.)
 */
function hostEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('APPVISOR_') || HOST_SETTINGS.has(name)) env[name] = value;
  }
  if (env.NODE_OPTIONS) env.NODE_OPTIONS = withoutHeapFlags(env.NODE_OPTIONS.split(/\s+/)).join(' ');
  return env;
}

/** Starts the app's host in a worker thread bounded by `memoryLimitMb` of V8 heap. */
export function startWorker(memoryLimitMb: number, on: HostListeners): HostChannel {
  const url = pathToFileURL(hostFile).href;
  let worker: Worker;
  const options = {
    execArgv: withoutHeapFlags(process.execArgv),
    env: hostEnv(),
    resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
    stdout: false,
    stderr: false,
  };
  if (fromSources) {
    const { api } = tsx();
    // An eval'd worker is a script: it registers tsx, then imports the host as a module.
    const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url)}); });`;
    worker = new Worker(code, { ...options, eval: true });
  } else {
    worker = new Worker(new URL(url), options);
  }
  let error: HostExit['error'];
  worker.on('message', (m: FromHost) => on.message(m));
  worker.on('error', (err: Error & { code?: string }) => {
    error = { ...(err.code ? { code: err.code } : {}), message: err.message };
  });
  worker.once('exit', (code) => on.exit({ code, signal: null, ...(error ? { error } : {}) }));
  return {
    pid: undefined,
    send: (message) => worker.postMessage(message),
    kill: () => void worker.terminate(),
  };
}

/** How much of a child's stderr is kept to tell an out-of-memory from another crash. */
const STDERR_TAIL = 4096;

/** Starts the app's host in a child process whose V8 heap is bounded by `memoryLimitMb`. */
export function startProcess(memoryLimitMb: number, on: HostListeners): HostChannel {
  const execArgv = [...withoutHeapFlags(process.execArgv), `--max-old-space-size=${memoryLimitMb}`];
  if (fromSources && !execArgv.some((a) => a.includes('tsx'))) execArgv.push('--import', tsx().loader);
  const child: ChildProcess = fork(hostFile, [], {
    execArgv,
    env: hostEnv(),
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    serialization: 'json',
  });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-STDERR_TAIL);
  });
  child.on('message', (m: FromHost) => on.message(m));
  // A failed send (the child gone) is told by 'exit'; it must not crash the supervisor.
  child.on('error', () => undefined);
  // 'close', not 'exit': by then stderr has been read to its end.
  child.once('close', (code, signal) => on.exit({ code, signal, stderr: tail }));
  return {
    pid: child.pid,
    send: (message) => {
      if (child.connected) child.send(message);
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
