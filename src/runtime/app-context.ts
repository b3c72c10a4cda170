/**
 * Which app the running code belongs to, carried through everything that code schedules
 * (timers, promises, sockets, emitters) by an AsyncLocalStorage. The runner enters an app's
 * scope for its create(), migrations, request and upgrade handlers and close(); serve's
 * process-wide error handlers read it to name the app whose stray error they log.
 *
 * Why this works for those handlers: Node runs 'uncaughtException' listeners in the async
 * context of the callback that threw, and 'unhandledRejection' listeners in the context of the
 * rejected promise. Checked on Node 20.19+ for throws from setTimeout, setImmediate, nextTick,
 * socket and EventEmitter callbacks and for rejections of promises and async functions;
 * test/cli/serve-process.test.ts fails if a Node version stops doing so.
 *
 * A second, narrower record is kept for another thread to read while this one is blocked (the
 * event-loop watcher, serve/loop-watcher.ts): the number of the app whose code `runInApp` called
 * and which has not returned yet, in a SharedArrayBuffer. It names the app of a synchronous
 * create(), migration, handler or close() that never returns; code an app scheduled (a promise
 * continuation after an `await`, a timer) runs outside `runInApp` and is not named there — an
 * AsyncLocalStorage store cannot be read from another thread, and tracking every callback
 * (async_hooks before/after) would cost every request.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The store of one app; made once per app instance and reused for every call. */
export interface AppScope {
  readonly app: string;
  /** The app's number in {@link runningAppCell} (never 0, which means no app). */
  readonly id: number;
}

const storage = new AsyncLocalStorage<AppScope>();

/** One Int32: the id of the app whose code `runInApp` is running now, 0 when none. */
const running = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
/** App names by id (index 0 unused); an app keeps its id across restarts. */
const names: string[] = [''];
const ids = new Map<string, number>();
const namedListeners = new Set<(id: number, app: string) => void>();

export function appScope(app: string): AppScope {
  let id = ids.get(app);
  if (id === undefined) {
    id = names.length;
    names.push(app);
    ids.set(app, id);
    for (const listener of namedListeners) listener(id, app);
  }
  return Object.freeze({ app, id });
}

/** Calls `fn(...args)` inside `scope`; what it schedules stays in the scope. Returns what `fn` returns. */
export function runInApp<A extends unknown[], R>(scope: AppScope, fn: (...args: A) => R, ...args: A): R {
  // Nested calls (an app's handler that reaches another app) name the innermost one; the
  // outer one is named again once the inner one returns. Plain writes, not Atomics.store: an
  // aligned Int32 is never torn, the reader looks a second later and needs no ordering, and a
  // sequentially consistent store is a memory fence that cost ≈ 8 ns each, on every request.
  const outer = running[0]!;
  running[0] = scope.id;
  try {
    return storage.run(scope, fn, ...args);
  } finally {
    running[0] = outer;
  }
}

/** The app whose code is running (or scheduled what is running), if any. */
export function currentApp(): string | undefined {
  return storage.getStore()?.app;
}

/**
 * The cell another thread reads (`Atomics.load(new Int32Array(cell), 0)`) to learn the id of the
 * app whose code `runInApp` has on this thread's stack now (0: none).
 */
export function runningAppCell(): SharedArrayBuffer {
  return running.buffer as SharedArrayBuffer;
}

/** The app of an id in {@link runningAppCell}. */
export function appOfId(id: number): string | undefined {
  return id === 0 ? undefined : names[id];
}

/** Every app scoped so far, by id. */
export function scopedApps(): [number, string][] {
  return names.slice(1).map((app, i) => [i + 1, app]);
}

/** Calls `listener` for each app scoped for the first time from now on; returns the unsubscribe. */
export function onAppScoped(listener: (id: number, app: string) => void): () => void {
  namedListeners.add(listener);
  return () => namedListeners.delete(listener);
}
