/**
 * A connection budget: at most `limit` open connections to one database server across every
 * app pool, so a thousand apps cannot exhaust the server's max_connections. A connection takes
 * a slot before it opens and gives it back when it closes; idle pooled connections close on
 * their own after the pool's idle timeout, which frees slots for busy apps.
 */
export class ConnectionBudget {
  readonly limit: number;
  readonly #waiters: { grant: () => void; timer: NodeJS.Timeout | undefined }[] = [];
  /** Pools that can close one idle connection on request (to hand its slot to a waiter). */
  readonly #reclaimers = new Set<() => boolean>();
  #open = 0;
  #peak = 0;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`connection budget must be an integer >= 1, got ${limit}`);
    this.limit = limit;
  }

  /** Connections open now (slots taken). */
  get open(): number {
    return this.#open;
  }

  /** The most connections ever open at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Connections waiting for a slot. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Takes a slot, waiting up to `waitMs` for one. Resolves with a release function (idempotent).
   */
  acquire(waitMs: number, describe: () => string): Promise<() => void> {
    if (this.#open < this.limit) return Promise.resolve(this.#take());
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(this.#take());
        },
        timer: undefined as NodeJS.Timeout | undefined,
      };
      waiter.timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(
          new Error(
            `the connection budget of ${this.limit} connections to ${describe()} stayed exhausted for ${waitMs} ms (APPVISOR_DB_CONNECTION_BUDGET raises it)`,
          ),
        );
      }, waitMs);
      waiter.timer.unref();
      this.#waiters.push(waiter);
      this.reclaim();
    });
  }

  /**
   * Registers a pool's way of closing one idle connection. While connections wait for a slot,
   * idle ones elsewhere are closed rather than held until their idle timeout. Returns the
   * unregister function.
   */
  register(reclaimOne: () => boolean): () => void {
    this.#reclaimers.add(reclaimOne);
    return () => this.#reclaimers.delete(reclaimOne);
  }

  /** If anyone waits, closes one idle connection somewhere (its slot then goes to the waiter). */
  reclaim(): void {
    if (this.#waiters.length === 0) return;
    for (const reclaimOne of this.#reclaimers) {
      if (reclaimOne()) return;
    }
  }

  #take(): () => void {
    this.#open += 1;
    if (this.#open > this.#peak) this.#peak = this.#open;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#open -= 1;
      this.#waiters.shift()?.grant();
    };
  }
}
