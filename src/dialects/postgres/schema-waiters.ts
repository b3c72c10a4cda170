/** Times in a row a connection may skip the pool's queue for waiters of its schema. */
const MAX_IN_A_ROW = 8;

interface Waiter<C> {
  served: boolean;
  give(conn: C): void;
}

/**
 * Checkouts of a shared pool waiting for a connection, by schema. A connection coming back goes
 * first to a waiter of the schema it is set to already, which saves that waiter its
 * `SET search_path` round trip; but at most MAX_IN_A_ROW times in a row, so that one busy app
 * cannot keep a connection from the others, who wait in the pool's own (first come, first
 * served) queue.
 */
export class SchemaWaiters<C extends object> {
  readonly #bySchema = new Map<string, Waiter<C>[]>();
  readonly #inARow = new WeakMap<C, number>();

  /**
   * A connection for `schema`: the one `connect()` yields or one offered for `schema` before
   * that, whichever comes first. A connection `connect()` yields after that goes to `surplus`.
   */
  wait(schema: string, connect: () => Promise<C>, surplus: (conn: C) => void): Promise<C> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter<C> = {
        served: false,
        give: (conn) => {
          waiter.served = true;
          this.#remove(schema, waiter);
          resolve(conn);
        },
      };
      const queue = this.#bySchema.get(schema);
      if (queue) queue.push(waiter);
      else this.#bySchema.set(schema, [waiter]);
      connect().then(
        (conn) => {
          if (waiter.served) surplus(conn);
          else waiter.give(conn);
        },
        (err: unknown) => {
          if (waiter.served) return;
          this.#remove(schema, waiter);
          reject(err);
        },
      );
    });
  }

  /** Hands `conn`, set to `schema`, to the longest waiter of that schema; false when it may not or none waits. */
  offer(conn: C, schema: string | undefined): boolean {
    const waiter = schema === undefined ? undefined : this.#bySchema.get(schema)?.[0];
    const inARow = this.#inARow.get(conn) ?? 0;
    if (!waiter || inARow >= MAX_IN_A_ROW) {
      this.#inARow.delete(conn);
      return false;
    }
    this.#inARow.set(conn, inARow + 1);
    waiter.give(conn);
    return true;
  }

  #remove(schema: string, waiter: Waiter<C>): void {
    const queue = this.#bySchema.get(schema);
    if (!queue) return;
    const i = queue.indexOf(waiter);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) this.#bySchema.delete(schema);
  }
}
