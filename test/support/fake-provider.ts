/**
 * A fake Provider for executor and reconciler tests: an in-memory inventory of databases and
 * schemas (so an observation sees what a create made), a log of every call, and failures or
 * hooks on chosen operations (a hook runs inside the call, e.g. to take the lock away or abort
 * the run while a CREATE is on its way).
 */
import { AppvisorError } from '../../src/errors.js';
import type {
  AppDatabase,
  Catalog,
  Dialect,
  Leftover,
  Observation,
  OperationResult,
  OpOptions,
  Provider,
} from '../../src/providers/provider.js';
import type { ProviderSet } from '../../src/providers/set.js';
import type { DatabaseTarget } from '../../src/reconcile/model.js';

export type FakeOperation =
  | 'observeDatabase'
  | 'catalog'
  | 'createDatabase'
  | 'dropDatabase'
  | 'observeSchema'
  | 'createSchema'
  | 'dropSchema'
  | 'listLeftovers'
  | 'sweepLeftover';

/** One object on the fake server: its ownership marker, if it carries one. */
export interface FakeObject {
  readonly owner?: string;
}

export interface FakeProviderOptions {
  /** @default 'postgres' */
  readonly dialect?: Dialect;
  /** @default '127.0.0.1:5432' (the planner fixtures' main server) */
  readonly server?: string;
}

export class FakeProvider implements Provider {
  readonly dialect: Dialect;
  readonly server: string;
  /** Databases on the server, by name. */
  readonly databases = new Map<string, FakeObject>();
  readonly schemas = new Map<string, FakeObject>();
  /** Half-made objects, by name (listLeftovers / sweepLeftover). */
  readonly leftovers = new Map<string, string>();
  /** Every call, as `operation name` (e.g. `createDatabase crm`). */
  readonly calls: string[] = [];
  readonly #failures = new Map<string, unknown>();
  readonly #hooks = new Map<string, () => unknown>();

  constructor(opts: FakeProviderOptions = {}) {
    this.dialect = opts.dialect ?? 'postgres';
    this.server = opts.server ?? '127.0.0.1:5432';
  }

  /** Makes `operation` (on `name`, or on anything) throw `err` from now on. */
  fail(operation: FakeOperation, err: unknown, name?: string): this {
    this.#failures.set(name === undefined ? operation : `${operation} ${name}`, err);
    return this;
  }

  /** Runs `fn` inside every `operation` call (awaited), before the operation does anything. */
  during(operation: FakeOperation, fn: () => unknown): this {
    this.#hooks.set(operation, fn);
    return this;
  }

  /** The calls that change the server (observations and listings left out). */
  changes(): string[] {
    return this.calls.filter((c) => !/^(observe|list|catalog)/.test(c));
  }

  async #enter(operation: FakeOperation, name: string | undefined, opts: OpOptions | undefined) {
    this.calls.push(name === undefined ? operation : `${operation} ${name}`);
    await this.#hooks.get(operation)?.();
    opts?.signal?.throwIfAborted();
    const err =
      (name !== undefined && this.#failures.get(`${operation} ${name}`)) || this.#failures.get(operation);
    if (err) throw err;
  }

  #schemasOnly(): void {
    if (this.dialect !== 'postgres') {
      throw new AppvisorError('UNSUPPORTED_MODE', { detail: `schemas need PostgreSQL, not ${this.dialect}` });
    }
  }

  static #observe(objects: Map<string, FakeObject>, name: string): Observation {
    const found = objects.get(name);
    if (!found) return { exists: false };
    return found.owner === undefined ? { exists: true } : { exists: true, owner: found.owner };
  }

  static #create(objects: Map<string, FakeObject>, name: string, owner: string): OperationResult {
    if (objects.has(name)) return 'unchanged';
    objects.set(name, { owner });
    return 'created';
  }

  async observeDatabase(name: string, opts?: OpOptions): Promise<Observation> {
    await this.#enter('observeDatabase', name, opts);
    return FakeProvider.#observe(this.databases, name);
  }
  async createDatabase(name: string, owner: string, opts?: OpOptions): Promise<OperationResult> {
    await this.#enter('createDatabase', name, opts);
    return FakeProvider.#create(this.databases, name, owner);
  }
  async dropDatabase(name: string, opts?: OpOptions): Promise<OperationResult> {
    await this.#enter('dropDatabase', name, opts);
    return this.databases.delete(name) ? 'deleted' : 'unchanged';
  }
  async observeSchema(schema: string, opts?: OpOptions): Promise<Observation> {
    await this.#enter('observeSchema', schema, opts);
    this.#schemasOnly();
    return FakeProvider.#observe(this.schemas, schema);
  }
  async createSchema(schema: string, owner: string, opts?: OpOptions): Promise<OperationResult> {
    await this.#enter('createSchema', schema, opts);
    this.#schemasOnly();
    return FakeProvider.#create(this.schemas, schema, owner);
  }
  async dropSchema(schema: string, opts?: OpOptions): Promise<OperationResult> {
    await this.#enter('dropSchema', schema, opts);
    this.#schemasOnly();
    return this.schemas.delete(schema) ? 'deleted' : 'unchanged';
  }
  async listLeftovers(opts?: OpOptions): Promise<readonly Leftover[]> {
    await this.#enter('listLeftovers', undefined, opts);
    return [...this.leftovers].map(([name, owner]) => ({ name, owner }));
  }
  async catalog(opts?: OpOptions): Promise<Catalog> {
    await this.#enter('catalog', undefined, opts);
    const entries = (objects: Map<string, FakeObject>) =>
      [...objects].map(([name, o]) => (o.owner === undefined ? { name } : { name, owner: o.owner }));
    return {
      databases: entries(this.databases),
      ...(this.dialect === 'postgres' ? { schemas: entries(this.schemas) } : {}),
    };
  }
  async sweepLeftover(name: string, owner: string, opts?: OpOptions): Promise<OperationResult> {
    await this.#enter('sweepLeftover', name, opts);
    if (this.leftovers.get(name) !== owner) return 'unchanged';
    this.leftovers.delete(name);
    return 'deleted';
  }
  openDatabase(name: string): Promise<AppDatabase> {
    return Promise.reject(new Error(`the fake provider opens no database (asked for ${name})`));
  }
  withConnection<T>(name: string): Promise<T> {
    return Promise.reject(new Error(`the fake provider opens no database (asked for ${name})`));
  }
  async close(): Promise<void> {}
}

/**
 * A ProviderSet over fakes: `main` for the main server, `others` by connection URL for
 * `new-connection` targets (an unknown URL throws, naming it).
 */
export function fakeProviders(main: FakeProvider, others: Readonly<Record<string, FakeProvider>> = {}) {
  const set = {
    main,
    forTarget(target: Pick<DatabaseTarget, 'serverRef'>): Provider {
      if (target.serverRef === 'main') return main;
      const other = others[target.serverRef.url];
      if (!other) throw new Error(`no fake provider for ${target.serverRef.url}`);
      return other;
    },
    close: async () => undefined,
  };
  // ProviderSet has private fields, so no object literal is one structurally.
  return set as unknown as ProviderSet;
}
