import { dialectFor, parseDatabaseUrl } from '../dialects/registry.js';
import type { ProviderOptions } from '../dialects/types.js';
import type { DatabaseUrl } from '../dialects/url.js';
import type { DatabaseTarget } from '../reconcile/model.js';
import { createProvider } from './index.js';
import type { Provider, ProviderLog } from './provider.js';
import { ConnectionBudget } from './sql/budget.js';

/**
 * The providers of one supervisor: the main server's, plus one per `new-connection` server,
 * created on first use and shared by every app on that server.
 */
export class ProviderSet {
  readonly main: Provider;
  readonly mainUrl: DatabaseUrl;
  readonly #dataDir: string;
  readonly #log: ProviderLog | undefined;
  readonly #byUrl = new Map<string, Provider>();
  readonly #budgetLimit: number | undefined;
  readonly #schemaPoolSize: number | undefined;
  readonly #adminConnections: number | undefined;
  /** One connection budget per server (host:port), shared by every provider on it. */
  readonly #budgets = new Map<string, ConnectionBudget>();

  constructor(
    mainUrl: string | DatabaseUrl,
    options: {
      dataDir: string;
      log?: ProviderLog;
      connectionBudget?: number;
      /** PostgreSQL: connections of the pool the new-schema apps of one database share (0: a pool per app). */
      schemaPoolSize?: number;
      /** Each provider's own connections: the reconciles that run at once (ProviderOptions.adminConnections). */
      adminConnections?: number;
    },
  ) {
    this.mainUrl = typeof mainUrl === 'string' ? parseDatabaseUrl(mainUrl) : mainUrl;
    this.#dataDir = options.dataDir;
    this.#log = options.log;
    this.#budgetLimit = options.connectionBudget;
    this.#schemaPoolSize = options.schemaPoolSize;
    this.#adminConnections = options.adminConnections;
    this.main = createProvider(this.mainUrl, this.#options(this.mainUrl));
  }

  /** The budgets in use, by server (for metrics and benchmarks). */
  budgets(): ReadonlyMap<string, ConnectionBudget> {
    return this.#budgets;
  }

  /** The provider that holds `target`. */
  forTarget(target: Pick<DatabaseTarget, 'serverRef'>): Provider {
    if (target.serverRef === 'main') return this.main;
    const url = target.serverRef.url;
    let provider = this.#byUrl.get(url);
    if (!provider) {
      provider = createProvider(url, this.#options(parseDatabaseUrl(url)));
      this.#byUrl.set(url, provider);
    }
    return provider;
  }

  async close(): Promise<void> {
    const all = [this.main, ...this.#byUrl.values()];
    this.#byUrl.clear();
    await Promise.allSettled(all.map((p) => p.close()));
  }

  #options(url: DatabaseUrl): ProviderOptions {
    let budget: ConnectionBudget | undefined;
    if (this.#budgetLimit !== undefined && dialectFor(url).budgeted) {
      const server = `${url.host}:${url.port}`;
      budget = this.#budgets.get(server);
      if (!budget) {
        budget = new ConnectionBudget(this.#budgetLimit);
        this.#budgets.set(server, budget);
      }
    }
    return {
      dataDir: this.#dataDir,
      ...(this.#log ? { log: this.#log } : {}),
      ...(budget ? { budget } : {}),
      ...(this.#schemaPoolSize !== undefined ? { schemaPoolSize: this.#schemaPoolSize } : {}),
      // Never fewer than the providers' default: the admin API observes beside the reconciles.
      ...(this.#adminConnections ? { adminConnections: Math.max(2, this.#adminConnections) } : {}),
    };
  }
}
