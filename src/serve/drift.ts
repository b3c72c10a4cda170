/**
 * Drift (SPEC §8.1): a follower whose own apps.d says something else than the leader applied. It
 * does not act on its files — the leader's are what counts — but it says so: once in the log per
 * change, and in `status`, the admin API and the metrics through `names()`.
 */
import type { Logger } from 'pino';
import type { Desired } from '../reconcile/model.js';
import type { AppRecord } from '../state/types.js';

/** How `name`'s manifest in this replica's apps.d differs from the applied record, or undefined. */
export function driftOf(name: string, local: Desired, record: AppRecord | undefined): string | undefined {
  const loaded = local.apps.get(name);
  const applied = record && record.status !== 'orphaned' ? record : undefined;
  if (loaded && applied) {
    return loaded.hash === applied.specHash ? undefined : `${loaded.file} differs from the applied manifest`;
  }
  if (loaded) return `${loaded.file} is not applied (not yet, or the leader's apps.d has no such app)`;
  if (!applied) return undefined;
  const invalid = local.invalid.some((f) => f.name === name || f.file === applied.file);
  return invalid ? `${applied.file} is invalid here` : `${applied.file} is missing from this apps.d`;
}

/** How long changes are gathered into one log line (a cluster's first start changes thousands). */
const LOG_EVERY_MS = 1_000;
/** Apps named in one log line; the rest are counted. */
const NAMED = 10;

export class Drift {
  readonly #log: Logger;
  readonly #apps = new Map<string, string>();
  /** Changes not logged yet: the app's new drift, or undefined when it agrees again. */
  #unlogged = new Map<string, string | undefined>();
  #timer: NodeJS.Timeout | undefined;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Records what a run found for `name` (undefined: no drift); logged within a second, gathered. */
  set(name: string, reason: string | undefined): void {
    if (reason === this.#apps.get(name)) return;
    if (reason === undefined) this.#apps.delete(name);
    else this.#apps.set(name, reason);
    this.#unlogged.set(name, reason);
    this.#timer ??= setTimeout(() => this.#flush(), LOG_EVERY_MS);
    this.#timer.unref();
  }

  #flush(): void {
    this.#timer = undefined;
    const changes = [...this.#unlogged];
    this.#unlogged = new Map();
    const differ = changes.filter(([, reason]) => reason !== undefined);
    const agree = changes.filter(([, reason]) => reason === undefined).map(([name]) => name);
    if (differ.length === 1) {
      const [app, drift] = differ[0]!;
      this.#log.warn(
        { app, drift },
        "this replica's apps.d differs from what the leader applied; serving what is applied",
      );
    } else if (differ.length > 1) {
      this.#log.warn(
        { apps: differ.slice(0, NAMED).map(([app, drift]) => ({ app, drift })), count: differ.length },
        `this replica's apps.d differs from what the leader applied for ${differ.length} apps; serving what is applied`,
      );
    }
    if (agree.length > 0) {
      this.#log.info(
        { apps: agree.slice(0, NAMED), count: agree.length },
        `this replica's apps.d agrees with the applied manifest again for ${agree.length} app(s)`,
      );
    }
  }

  /** A leader applies its own apps.d: nothing it has can differ. */
  clear(): void {
    this.#apps.clear();
    this.#unlogged.clear();
  }

  /** The apps that differ, sorted. */
  names(): string[] {
    return [...this.#apps.keys()].sort();
  }

  reason(name: string): string | undefined {
    return this.#apps.get(name);
  }
}
