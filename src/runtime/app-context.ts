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
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** The store of one app; made once per app instance and reused for every call. */
export interface AppScope {
  readonly app: string;
}

const storage = new AsyncLocalStorage<AppScope>();

export function appScope(app: string): AppScope {
  return Object.freeze({ app });
}

/** Calls `fn(...args)` inside `scope`; what it schedules stays in the scope. Returns what `fn` returns. */
export function runInApp<A extends unknown[], R>(scope: AppScope, fn: (...args: A) => R, ...args: A): R {
  return storage.run(scope, fn, ...args);
}

/** The app whose code is running (or scheduled what is running), if any. */
export function currentApp(): string | undefined {
  return storage.getStore()?.app;
}
