import { AppvisorError } from '../errors.js';
import type { GatewayApps, ReadyApp } from './types.js';

/** The key of the main app; never a valid sub-app name. */
export const MAIN = 'main';

/**
 * Lazy start as the gateway sees it: one pending `acquire` per app shared by every waiting
 * request, and a per-request deadline after which that request gets APP_STARTING while the
 * start itself goes on for the next visitors.
 */
export class Acquirer {
  readonly #apps: GatewayApps;
  readonly #opts: { readonly timeoutMs: number };
  readonly #pending = new Map<string, Promise<ReadyApp>>();

  constructor(apps: GatewayApps, timeoutMs: number) {
    this.#apps = apps;
    this.#opts = Object.freeze({ timeoutMs });
  }

  /** The app `name` (or MAIN) once it can take requests, or an AppvisorError. */
  acquire(name: string): Promise<ReadyApp> {
    let pending = this.#pending.get(name);
    if (pending === undefined) {
      pending = this.#call(name);
      this.#pending.set(name, pending);
      const clear = (): void => {
        if (this.#pending.get(name) === pending) this.#pending.delete(name);
      };
      pending.then(clear, clear);
    }
    return withDeadline(pending, this.#opts.timeoutMs, name);
  }

  #call(name: string): Promise<ReadyApp> {
    try {
      return name === MAIN ? this.#apps.acquireMain(this.#opts) : this.#apps.acquire(name, this.#opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

function withDeadline(pending: Promise<ReadyApp>, timeoutMs: number, name: string): Promise<ReadyApp> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new AppvisorError('APP_STARTING', { app: name })), timeoutMs);
    pending.then(
      (app) => {
        clearTimeout(timer);
        resolve(app);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
