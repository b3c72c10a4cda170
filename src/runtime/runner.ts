import type { ReadyApp } from '../gateway/types.js';
import type { AppStatus } from '../state/types.js';
import type { InstanceError, InstanceSpec } from './adapter.js';

/**
 * One app instance's lifecycle, wherever its code runs: in this process (AppInstanceRunner) or
 * in a worker thread or child process of its own (IsolatedInstanceRunner). Single-use: start is
 * single-flight, a failed start (or an isolated instance's crash) is answered with its error from
 * then on and never retried here; stop is idempotent.
 */
export interface InstanceRunner {
  readonly spec: InstanceSpec;
  readonly status: AppStatus;
  readonly error: InstanceError | null;
  readonly startedAt: Date | null;
  /** When the start failed, or the instance crashed (null unless it did). */
  readonly failedAt: Date | null;
  /** While a start is under way: when it gives up (ms since the epoch); null otherwise. */
  readonly deadline: number | null;
  /** Isolated instances: the memory it last reported, in MiB (RSS of a process, heap of a worker). */
  readonly memoryMb?: number | undefined;
  /** The app if it can take a request right now. */
  ready(): ReadyApp | undefined;
  /** Starts the instance, or joins the start under way; after a failure, fails fast with it. */
  start(): Promise<ReadyApp>;
  /** Resolves when no start is under way (whatever its outcome). */
  settled(): Promise<void>;
  /** Stops the instance (requests in flight get up to `graceMs` to finish where it can wait). Safe to call twice. */
  stop(opts?: { readonly graceMs?: number }): Promise<void>;
  /** Hands the running app its secrets as they stand now (a rotation, without a restart). */
  refreshSecrets(): Promise<void>;
}
