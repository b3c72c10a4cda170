/**
 * An isolated app instance (SPEC §8.3): the app runs in a worker thread or a child process of
 * its own, served through an {@link AppProxy}, and watched. No heartbeat for `watchdogMs`
 * (APP_UNRESPONSIVE), memory over `memoryLimitMb` (APP_OUT_OF_MEMORY), or an exit or uncaught
 * error (APP_CRASHED) ends it: it is killed, its status is `error` with that code, and
 * `onCrash` tells the runtime, whose reconcile restarts it with the queue's backoff.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type Logger, levels } from 'pino';
import { AppvisorError, isErrorCode, toAppvisorError } from '../../errors.js';
import type { ReadyApp } from '../../gateway/types.js';
import type { AppStatus } from '../../state/types.js';
import type { InstanceError, InstanceSpec, IsolationSpec } from '../adapter.js';
import type { InstanceSecrets } from '../instance.js';
import type { InstanceRunner } from '../runner.js';
import { type HostChannel, type HostExit, startProcess, startWorker } from './channel.js';
import type { FromHost, HostDatabase, HostMemory } from './protocol.js';
import { AppProxy } from './proxy.js';
import { socketPathFor } from './sockets.js';
import { heartbeatMsFor, Watchdog } from './watchdog.js';

export interface IsolatedDeps {
  readonly log: Logger;
  readonly startTimeoutMs: number;
  /** Where the app's socket goes (`<dir>/<name>-<random>.sock`). */
  readonly socketDir: string;
  /**
   * The database settings the host opens its client with, its connections reserved in the
   * supervisor's connection budget until `release`.
   */
  database(): Promise<{ readonly database: HostDatabase; release(): void }>;
  secrets(): Promise<InstanceSecrets>;
  onStatus(status: AppStatus, error: InstanceError | null): void;
  onStartFinished?(ok: boolean, ms: number): void;
  /** A running instance ended by itself or by the watchdog. */
  onCrash?(error: AppvisorError): void;
}

/** How long a stopping host may take to close its app and database before it is killed. */
const CLOSE_MS = 5_000;
/** How long a broken request waits to learn whether the instance is dying (its answer's code). */
const VERDICT_MS = 1_000;
const MIB = 1024 * 1024;

export class IsolatedInstanceRunner implements InstanceRunner {
  readonly spec: InstanceSpec;
  readonly #isolation: IsolationSpec;
  readonly #deps: IsolatedDeps;
  readonly #log: Logger;
  readonly socketPath: string;
  #status: AppStatus = 'stopped';
  #error: InstanceError | null = null;
  #startedAt: Date | null = null;
  #failedAt: Date | null = null;
  #deadline: number | null = null;
  #lastFailure: AppvisorError | undefined;
  #ready: AppProxy | undefined;
  #proxy: AppProxy | undefined;
  #channel: HostChannel | undefined;
  #exited: Promise<HostExit> | undefined;
  #starting: Promise<ReadyApp> | undefined;
  #stopping: Promise<void> | undefined;
  #stopped = false;
  /** Set once the host is being ended on purpose (stop, or the watchdog's verdict). */
  #ending = false;
  #release: (() => void) | undefined;
  /** The start waiting for the host's answer. */
  #pending: { resolve(): void; reject(err: unknown): void } | undefined;
  /** Resolved with the failure once the instance ended by itself. */
  #failure: Promise<AppvisorError>;
  #fail!: (err: AppvisorError) => void;
  readonly #watchdog: Watchdog;
  #memory: HostMemory | undefined;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  /** The uncaught error the host reported before it ended. */
  #fatal: string | undefined;

  constructor(spec: InstanceSpec, isolation: IsolationSpec, deps: IsolatedDeps) {
    this.spec = spec;
    this.#isolation = isolation;
    this.#deps = deps;
    this.#log = deps.log;
    this.socketPath = socketPathFor(deps.socketDir, spec.name);
    this.#watchdog = new Watchdog({
      watchdogMs: isolation.watchdogMs,
      heartbeatMs: heartbeatMsFor(isolation.watchdogMs),
      onSilent: (silentMs) => this.#unresponsive(silentMs),
    });
    this.#failure = new Promise((resolve) => {
      this.#fail = resolve;
    });
  }

  get status(): AppStatus {
    return this.#status;
  }
  get error(): InstanceError | null {
    return this.#error;
  }
  get startedAt(): Date | null {
    return this.#startedAt;
  }
  get failedAt(): Date | null {
    return this.#failedAt;
  }
  get deadline(): number | null {
    return this.#starting ? this.#deadline : null;
  }
  get memoryMb(): number | undefined {
    const m = this.#memory;
    if (!m) return undefined;
    return Math.round((this.#isolation.mode === 'process' ? m.rss : m.heap) / MIB);
  }

  ready(): ReadyApp | undefined {
    return this.#ready;
  }

  start(): Promise<ReadyApp> {
    if (this.#ready) return Promise.resolve(this.#ready);
    if (this.#starting) return this.#starting;
    if (this.#lastFailure) return Promise.reject(this.#lastFailure);
    if (this.#stopped)
      return Promise.reject(new AppvisorError('APP_ERROR', { app: this.spec.name, detail: 'stopped' }));
    this.#starting = this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  settled(): Promise<void> {
    return (this.#starting ?? Promise.resolve()).then(
      () => undefined,
      () => undefined,
    );
  }

  stop(opts: { readonly graceMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(opts.graceMs ?? 10_000);
    return this.#stopping;
  }

  async refreshSecrets(): Promise<void> {
    if (!this.#ready) await this.#starting?.catch(() => undefined);
    if (!this.#ready || !this.#channel) return;
    const secrets = await this.#deps.secrets();
    this.#channel.send({ t: 'secrets', own: secrets.own, main: secrets.main });
  }

  async #start(): Promise<ReadyApp> {
    const started = performance.now();
    this.#deadline = Date.now() + this.#deps.startTimeoutMs;
    this.#setStatus('starting', null);
    let timer: NodeJS.Timeout | undefined;
    let abandoned = false;
    try {
      // Everything the start waits for, the host's answer included, is bounded by the timeout.
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new AppvisorError('APP_START_TIMEOUT', { app: this.spec.name, ms: this.#deps.startTimeoutMs }),
            ),
          this.#deps.startTimeoutMs,
        );
        timer.unref();
      });
      timeout.catch(() => undefined);
      const answered = new Promise<void>((resolve, reject) => {
        this.#pending = { resolve, reject };
      });
      answered.catch(() => undefined);
      const secretsRead = this.#deps.secrets();
      secretsRead.catch(() => undefined);
      const reserved = this.#deps.database();
      // A reservation that arrives after the start gave up is handed back at once.
      reserved.then(
        (r) => {
          if (abandoned) r.release();
        },
        () => undefined,
      );
      const { database, release } = await Promise.race([reserved, timeout]);
      this.#release = release;
      const secrets = await Promise.race([secretsRead, timeout]);
      if (this.#stopped)
        throw new AppvisorError('APP_ERROR', { app: this.spec.name, detail: 'stopped while starting' });
      fs.mkdirSync(path.dirname(this.socketPath), { recursive: true });
      this.#spawn();
      this.#channel!.send({
        t: 'start',
        spec: this.spec,
        database,
        secrets,
        socketPath: this.socketPath,
        heartbeatMs: heartbeatMsFor(this.#isolation.watchdogMs),
        logLevel: this.#log.level,
      });
      await Promise.race([answered, timeout]);
      if (this.#stopped)
        throw new AppvisorError('APP_ERROR', { app: this.spec.name, detail: 'stopped while starting' });
      const proxy = new AppProxy({
        name: this.spec.name,
        socketPath: this.socketPath,
        opened: this.#opened,
        closed: this.#closed,
        verdict: () => this.#verdict(),
      });
      this.#proxy = proxy;
      this.#ready = proxy;
      this.#startedAt = new Date();
      this.#setStatus('running', null);
      this.#deps.onStartFinished?.(true, performance.now() - started);
      this.#log.info(
        {
          ms: Math.round(performance.now() - started),
          isolation: this.#isolation.mode,
          // Not `pid`: the supervisor's line has that already (a JSON key twice is no JSON).
          ...(this.#channel?.pid !== undefined ? { childPid: this.#channel.pid } : {}),
        },
        'app started',
      );
      return proxy;
    } catch (err) {
      abandoned = true;
      this.#deps.onStartFinished?.(false, performance.now() - started);
      const error = toAppvisorError(err, 'APP_ERROR', { app: this.spec.name });
      // Ended on purpose: its exit is not a crash to report.
      this.#ending = true;
      this.#end();
      // No host holds the connections (one that does gives them back when it exits).
      if (!this.#channel) {
        this.#release?.();
        this.#release = undefined;
      }
      this.#recordFailure(error, 'app failed to start');
      throw error;
    } finally {
      this.#pending = undefined;
      clearTimeout(timer);
    }
  }

  #spawn(): void {
    const limit = this.#isolation.memoryLimitMb;
    const listeners = { message: this.#onMessage, exit: this.#onExit };
    let resolveExit!: (exit: HostExit) => void;
    this.#exited = new Promise((resolve) => {
      resolveExit = resolve;
    });
    const on = {
      message: listeners.message,
      exit: (exit: HostExit) => {
        resolveExit(exit);
        listeners.exit(exit);
      },
    };
    this.#channel = this.#isolation.mode === 'process' ? startProcess(limit, on) : startWorker(limit, on);
  }

  readonly #onMessage = (message: FromHost): void => {
    switch (message.t) {
      case 'heartbeat':
        this.#memory = message.memory;
        this.#watchdog.beat();
        this.#checkMemory(message.memory);
        return;
      case 'log':
        this.#relog(message.line);
        return;
      case 'ready':
        this.#pending?.resolve();
        return;
      case 'failed': {
        const code = isErrorCode(message.code) ? message.code : 'APP_ERROR';
        this.#pending?.reject(
          new AppvisorError(code, message.params as Record<string, string>, { message: message.message }),
        );
        return;
      }
      case 'fatal':
        this.#fatal = message.message;
        return;
      case 'stopped':
        return;
    }
  };

  readonly #onExit = (exit: HostExit): void => {
    this.#watchdog.stop();
    fs.rmSync(this.socketPath, { force: true });
    this.#release?.();
    this.#release = undefined;
    if (this.#ending) return;
    this.#ending = true;
    const error = this.#exitError(exit);
    if (this.#pending) {
      // Still starting: the start fails with it.
      this.#pending.reject(error);
      return;
    }
    this.#crashed(error, { exitCode: exit.code, signal: exit.signal });
  };

  #exitError(exit: HostExit): AppvisorError {
    const app = this.spec.name;
    const limitMb = this.#isolation.memoryLimitMb;
    if (
      exit.error?.code === 'ERR_WORKER_OUT_OF_MEMORY' ||
      /heap out of memory|allocation failed/i.test(exit.stderr ?? '')
    ) {
      const usedMb = this.memoryMb ?? limitMb;
      return new AppvisorError('APP_OUT_OF_MEMORY', { app, usedMb: Math.max(usedMb, limitMb), limitMb });
    }
    const detail =
      (exit.error?.message ?? this.#fatal)
        ? `uncaught error: ${exit.error?.message ?? this.#fatal}`
        : exit.signal
          ? `killed by ${exit.signal}`
          : `it exited with code ${exit.code}`;
    return new AppvisorError('APP_CRASHED', { app, detail });
  }

  /** A running instance ended by itself or was ended by the watchdog: status error, and the runtime is told. */
  #crashed(error: AppvisorError, figures: object): void {
    this.#ending = true;
    this.#ready = undefined;
    this.#recordFailure(error, 'isolated app ended', figures);
    this.#fail(error);
    this.#end();
    this.#deps.onCrash?.(error);
  }

  #recordFailure(error: AppvisorError, msg: string, figures: object = {}): void {
    this.#lastFailure = error;
    this.#failedAt = new Date();
    this.#startedAt = null;
    if (error.code === 'APP_NEEDS_UPGRADE') {
      this.#setStatus('needs-upgrade', { code: error.code, message: error.message });
      this.#log.warn({ err: error.message, code: error.code }, 'app needs an upgrade');
      return;
    }
    this.#setStatus('error', { code: error.code, message: error.message });
    this.#log.error(
      { ...figures, err: error.message, code: error.code, isolation: this.#isolation.mode },
      msg,
    );
  }

  /** Kills the host (if any) and lets go of what it held. */
  #end(): void {
    this.#watchdog.stop();
    this.#channel?.kill();
    this.#proxy?.close();
  }

  /** The watchdog's verdict: no heartbeat for longer than watchdogMs. */
  #unresponsive(silentMs: number): void {
    if (this.#ending) return;
    const error = new AppvisorError('APP_UNRESPONSIVE', {
      app: this.spec.name,
      ms: this.#isolation.watchdogMs,
    });
    if (this.#pending) {
      this.#ending = true;
      this.#pending.reject(error);
      return;
    }
    this.#crashed(error, { blockedMs: Math.round(silentMs) });
  }

  #checkMemory(memory: HostMemory): void {
    const limit = this.#isolation.memoryLimitMb;
    const used = this.#isolation.mode === 'process' ? memory.rss : memory.heap;
    if (used <= limit * MIB || this.#ending) return;
    const usedMb = Math.round(used / MIB);
    const error = new AppvisorError('APP_OUT_OF_MEMORY', { app: this.spec.name, usedMb, limitMb: limit });
    if (this.#pending) {
      this.#ending = true;
      this.#pending.reject(error);
      return;
    }
    this.#crashed(error, { usedMb, limitMb: limit });
  }

  /** A line of the app's logger: logged here with the app, its level, message and fields as they were. */
  #relog(line: string): void {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.#log.info({ line: line.trimEnd() }, 'unparsed app log line');
      return;
    }
    const { level, msg, time: _t, pid: _p, hostname: _h, app: _a, ...fields } = entry;
    const label = typeof level === 'number' ? levels.labels[level] : undefined;
    const log = this.#log as unknown as Record<string, (obj: object, msg?: string) => void>;
    const write = log[label ?? 'info'] ?? log.info!;
    write.call(this.#log, fields, typeof msg === 'string' ? msg : undefined);
  }

  readonly #opened = (): void => {
    this.#inFlight++;
  };

  readonly #closed = (): void => {
    this.#inFlight--;
    if (this.#inFlight === 0) this.#drained?.();
  };

  /** What a request broken in flight is answered: the instance's failure if it ends within VERDICT_MS. */
  #verdict(): Promise<AppvisorError | undefined> {
    if (this.#lastFailure) return Promise.resolve(this.#lastFailure);
    return Promise.race([
      this.#failure,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), VERDICT_MS).unref()),
    ]);
  }

  async #stop(graceMs: number): Promise<void> {
    this.#stopped = true;
    const wasActive =
      this.#status !== 'stopped' && this.#status !== 'error' && this.#status !== 'needs-upgrade';
    if (wasActive) this.#setStatus('stopping', this.#error);
    await this.#starting?.catch(() => undefined);
    // Drain: nothing new is routed here; what is in flight gets graceMs to finish.
    this.#ready = undefined;
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        timer.unref();
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const channel = this.#channel;
    if (channel && !this.#ending) {
      this.#ending = true;
      this.#watchdog.stop();
      channel.send({ t: 'stop' });
      const timer = setTimeout(() => {
        this.#log.warn({ ms: CLOSE_MS }, 'isolated app did not stop in time; killed');
        channel.kill();
      }, CLOSE_MS);
      timer.unref();
      await this.#exited;
      clearTimeout(timer);
    } else if (channel) {
      channel.kill();
      await this.#exited;
    }
    this.#proxy?.close();
    this.#release?.();
    this.#release = undefined;
    this.#startedAt = null;
    if (wasActive) this.#setStatus('stopped', null);
  }

  #setStatus(status: AppStatus, error: InstanceError | null): void {
    if (this.#status === status && this.#error === error) return;
    this.#status = status;
    this.#error = error;
    this.#deps.onStatus(status, error);
  }
}
