import type { DatabaseTarget } from '../reconcile/model.js';
import { createProvider } from './index.js';
import type { Provider, ProviderLog } from './provider.js';
import { type DatabaseUrl, parseDatabaseUrl } from './url.js';

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

  constructor(mainUrl: string | DatabaseUrl, options: { dataDir: string; log?: ProviderLog }) {
    this.mainUrl = typeof mainUrl === 'string' ? parseDatabaseUrl(mainUrl) : mainUrl;
    this.#dataDir = options.dataDir;
    this.#log = options.log;
    this.main = createProvider(this.mainUrl, this.#options());
  }

  /** The provider that holds `target`. */
  forTarget(target: Pick<DatabaseTarget, 'serverRef'>): Provider {
    if (target.serverRef === 'main') return this.main;
    const url = target.serverRef.url;
    let provider = this.#byUrl.get(url);
    if (!provider) {
      provider = createProvider(url, this.#options());
      this.#byUrl.set(url, provider);
    }
    return provider;
  }

  async close(): Promise<void> {
    const all = [this.main, ...this.#byUrl.values()];
    this.#byUrl.clear();
    await Promise.allSettled(all.map((p) => p.close()));
  }

  #options(): { dataDir: string; log?: ProviderLog } {
    return { dataDir: this.#dataDir, ...(this.#log ? { log: this.#log } : {}) };
  }
}
