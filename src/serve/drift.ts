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

export class Drift {
  readonly #log: Logger;
  readonly #apps = new Map<string, string>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Records what a run found for `name` (undefined: no drift). */
  set(name: string, reason: string | undefined): void {
    const was = this.#apps.get(name);
    if (reason === was) return;
    if (reason === undefined) {
      this.#apps.delete(name);
      this.#log.info({ app: name }, "this replica's apps.d agrees with the applied manifest again");
      return;
    }
    this.#apps.set(name, reason);
    this.#log.warn(
      { app: name, drift: reason },
      "this replica's apps.d differs from what the leader applied; serving what is applied",
    );
  }

  /** A leader applies its own apps.d: nothing it has can differ. */
  clear(): void {
    this.#apps.clear();
  }

  /** The apps that differ, sorted. */
  names(): string[] {
    return [...this.#apps.keys()].sort();
  }

  reason(name: string): string | undefined {
    return this.#apps.get(name);
  }
}
