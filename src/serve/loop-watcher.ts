/**
 * The blocked-event-loop detector of `serve` (SPEC §8.3). Shared apps run on the supervisor's
 * own event loop, where nothing can preempt them: an app's endless loop stalls every app, and
 * the supervisor cannot even log it, since logging needs the loop too. So the main thread only
 * beats (a counter in a SharedArrayBuffer, every HEARTBEAT_MS) and a thread of its own
 * (loop-watcher-thread.ts) watches the beat: a loop stuck longer than BLOCKED_MS gets one
 * warning while it is stuck, `{event: 'loop-blocked', app, ms}`, naming the app whose code
 * `runInApp` has on the stack (runtime/app-context.ts; code an app resumes after an await or
 * runs from a timer is outside it and not named). When the loop runs again the main thread
 * logs how long it was blocked, `{event: 'loop-resumed', app, ms}`, and `onBlocked` counts it.
 *
 * The thread never keeps the process alive (unref) and ends with `stop()`.
 */
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import type { ResolvedLoggerOptions } from '../log.js';
import { appOfId, onAppScoped, runningAppCell, scopedApps } from '../runtime/app-context.js';
import {
  type AppNamed,
  BLOCKED_MS,
  CELL,
  CELLS,
  HEARTBEAT_MS,
  type LoopWatchData,
} from './loop-watch-cells.js';
import { siblingModule, startModuleThread } from './module-thread.js';

/** One block of the loop that was reported, once it is over. */
export interface LoopBlock {
  /** The app the watcher named (undefined: no app's handler was on the stack). */
  readonly app: string | undefined;
  /** How long the loop did not run, to within HEARTBEAT_MS. */
  readonly ms: number;
}

export interface LoopWatcherOptions {
  /** The main thread's lines. */
  readonly log: Logger;
  /** How the thread writes its lines (to fd 1): as `log` does. */
  readonly threadLog: ResolvedLoggerOptions;
  /** Each reported block, once the loop runs again (for metrics). */
  readonly onBlocked?: (block: LoopBlock) => void;
}

export interface LoopWatcher {
  /** Stops the beat and the thread; safe to call twice. */
  stop(): Promise<void>;
}

/** A small heap: the thread holds a logger and a table of app names. */
const THREAD_LIMITS = { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 };

/** Starts the thread and the beat; resolves once the thread runs. */
export async function startLoopWatcher(options: LoopWatcherOptions): Promise<LoopWatcher> {
  const { log } = options;
  const cells = new Int32Array(new SharedArrayBuffer(CELLS * Int32Array.BYTES_PER_ELEMENT));
  const data: LoopWatchData = {
    cells: cells.buffer as SharedArrayBuffer,
    runningApp: runningAppCell(),
    names: scopedApps(),
    log: options.threadLog,
    blockedMs: BLOCKED_MS,
    pollMs: HEARTBEAT_MS,
  };
  const thread = startModuleThread(siblingModule(import.meta.url, 'loop-watcher-thread'), {
    workerData: data,
    resourceLimits: THREAD_LIMITS,
  });
  const unsubscribe = onAppScoped((id, app) => thread.postMessage({ id, app } satisfies AppNamed));
  try {
    await new Promise<void>((resolve, reject) => {
      const exited = (code: number): void =>
        reject(new Error(`the event-loop watcher exited with code ${code}`));
      thread.once('error', reject);
      thread.once('exit', exited);
      thread.once('online', () => {
        thread.off('error', reject);
        thread.off('exit', exited);
        resolve();
      });
    });
  } catch (err) {
    unsubscribe();
    await thread.terminate();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  thread.on('error', (err) => {
    log.warn({ err: messageOf(err) }, 'the event-loop watcher failed; a blocked loop is no longer reported');
  });
  thread.on('exit', (code) => {
    if (!stopping) log.warn({ code }, 'the event-loop watcher exited; a blocked loop is no longer reported');
  });
  thread.unref();

  // How long the loop took to come back for each of the last beats, by beat (mod 4): the
  // block the thread reported ended with the beat after the one it saw stuck.
  const gaps = new Float64Array(4);
  let last = performance.now();
  const beat = setInterval(() => {
    const now = performance.now();
    const n = (Atomics.add(cells, CELL.beat, 1) + 1) | 0;
    gaps[n & 3] = now - last;
    last = now;
    if (Atomics.load(cells, CELL.reported) === 0) return;
    const ended = (Atomics.load(cells, CELL.reportedBeat) + 1) | 0;
    const app = appOfId(Atomics.load(cells, CELL.reportedApp));
    Atomics.store(cells, CELL.reported, 0);
    const ms = Math.round(gaps[ended & 3]!);
    log.warn(
      { event: 'loop-resumed', app, ms },
      `the event loop runs again after ${ms} ms blocked${app === undefined ? '' : ` by app ${app}`}`,
    );
    options.onBlocked?.({ app, ms });
  }, HEARTBEAT_MS);
  beat.unref();

  return {
    stop() {
      stopping ??= (async () => {
        clearInterval(beat);
        unsubscribe();
        await thread.terminate();
      })();
      return stopping;
    },
  };
}
