/**
 * What the main thread and the event-loop watcher's thread share (serve/loop-watcher.ts and
 * serve/loop-watcher-thread.ts): the layout of their SharedArrayBuffer, read and written with
 * Atomics, and the data the thread starts with.
 */
import type { ResolvedLoggerOptions } from '../log.js';

/** Int32 cells of the shared buffer. */
export const CELL = {
  /** Advanced by the main thread every HEARTBEAT_MS. */
  beat: 0,
  /** 1 once the thread has warned about a block the main thread has not yet logged the end of. */
  reported: 1,
  /** The beat the main thread was stuck at when the thread warned. */
  reportedBeat: 2,
  /** The app id the thread named (0: none), see runtime/app-context.ts. */
  reportedApp: 3,
} as const;
export const CELLS = 4;

/** How often the main thread beats, and the watcher's thread looks. */
export const HEARTBEAT_MS = 100;

/**
 * A loop blocked longer than this is reported. One second: far above what a healthy loop
 * stalls for (GC pauses, a large JSON.parse, a manifest reload stay in the tens of ms) and at
 * most a few beats late, yet short enough that the warning is in the log while every app
 * waits. Isolated apps have their own, configurable, bound: `isolation.watchdogMs`.
 */
export const BLOCKED_MS = 1_000;

/** The watcher thread's `workerData`. */
export interface LoopWatchData {
  /** CELLS Int32 cells, see CELL. */
  readonly cells: SharedArrayBuffer;
  /** The running-app cell of runtime/app-context.ts. */
  readonly runningApp: SharedArrayBuffer;
  /** App names by id known when the thread starts; later ones come as {@link AppNamed} messages. */
  readonly names: readonly (readonly [number, string])[];
  /** How the thread logs: as the supervisor's logger, on fd 1. */
  readonly log: ResolvedLoggerOptions;
  readonly blockedMs: number;
  readonly pollMs: number;
}

/** Posted to the thread for each app scoped after it started. */
export interface AppNamed {
  readonly id: number;
  readonly app: string;
}
