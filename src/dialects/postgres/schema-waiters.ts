/** Times in a row a connection may go from one checkout of a schema to the next without the pool. */
const MAX_IN_A_ROW = 8;

interface Waiter<C> {
  readonly give: (conn: C) => void;
  readonly connect: () => void;
}

interface SchemaState<C> {
  /** Checkouts of the schema holding a connection or acquiring one from the pool. */
  active: number;
  /** Checkouts over the limit, waiting for a connection of the schema to come back. */
  readonly parked: Waiter<C>[];
}

/**
 * Which checkouts of a shared pool get connections, by schema (one app's). An app holds at most
 * `limit` connections at once (its `maxConnections`), so one busy app leaves the rest of the
 * pool to the others; its checkouts over the limit wait for one of its own connections to come
 * back, which is already set to its schema and needs no `SET search_path`. A connection goes
 * from checkout to checkout of one app at most MAX_IN_A_ROW times before it goes back to the
 * pool's own queue (first come, first served), so that no app keeps a connection forever.
 */
export class SchemaWaiters<C extends object> {
  readonly #schemas = new Map<string, SchemaState<C>>();
  readonly #inARow = new WeakMap<C, number>();

  /** A connection for a checkout of `schema`: from `connect()` within the limit, else one of the schema's coming back. */
  acquire(schema: string, limit: number, connect: () => Promise<C>): Promise<C> {
    const state = this.#state(schema);
    return new Promise((resolve, reject) => {
      const waiter: Waiter<C> = {
        give: resolve,
        connect: () => {
          state.active += 1;
          connect().then(resolve, (err: unknown) => {
            this.#finished(schema, state);
            reject(err);
          });
        },
      };
      if (state.active < limit) waiter.connect();
      else state.parked.push(waiter);
    });
  }

  /**
   * A checkout of `schema` ended. Its connection, when `reusable` (clean and set to `schema`),
   * goes to the schema's next parked checkout: true. False when the caller must give it back to
   * the pool (not reusable, none parked, or too many times in a row).
   */
  release(conn: C, schema: string, reusable: boolean): boolean {
    const state = this.#schemas.get(schema);
    if (!state) return false;
    const inARow = this.#inARow.get(conn) ?? 0;
    const next = state.parked[0];
    if (reusable && next && inARow < MAX_IN_A_ROW) {
      state.parked.shift();
      this.#inARow.set(conn, inARow + 1);
      next.give(conn);
      return true;
    }
    this.#inARow.delete(conn);
    this.#finished(schema, state);
    return false;
  }

  /** One checkout of the schema holds no connection any more: a parked one may ask the pool. */
  #finished(schema: string, state: SchemaState<C>): void {
    state.active -= 1;
    const next = state.parked.shift();
    if (next) next.connect();
    else if (state.active === 0) this.#schemas.delete(schema);
  }

  #state(schema: string): SchemaState<C> {
    let state = this.#schemas.get(schema);
    if (!state) {
      state = { active: 0, parked: [] };
      this.#schemas.set(schema, state);
    }
    return state;
  }
}
