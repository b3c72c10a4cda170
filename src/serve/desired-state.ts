/**
 * The supervisor's desired state: the manifests of apps.d as last read, and the names the state
 * store holds records for. Reloads are serialized and coalesced; each tells which apps changed.
 */
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { checkApplications } from '../manifests/applications-check.js';
import { ManifestCache } from '../manifests/cache.js';
import { loadManifests } from '../manifests/load.js';
import { toDesired } from '../reconcile/desired.js';
import type { Desired } from '../reconcile/model.js';
import type { StateStore } from '../state/types.js';

export interface DesiredStateOptions {
  readonly appsDir: string;
  readonly store: Pick<StateStore, 'listRecords'>;
  readonly log: Logger;
  /** Told the names to reconcile after a reload (those that changed, or all on an emptied folder). */
  readonly onChange: (names: readonly string[]) => void;
  /** Further names every full reconcile covers (the apps the runtime knows). */
  readonly extraNames?: () => Iterable<string>;
  /** Settings `applications`' names (see checkApplications). @default none */
  readonly applications?: readonly string[];
}

const APP_NAME = /^[a-z][a-z0-9_-]{0,39}$/;

export class DesiredState {
  readonly #appsDir: string;
  /** The settings' application names a manifest may pick. */
  readonly #applications: readonly string[];
  readonly #store: Pick<StateStore, 'listRecords'>;
  readonly #log: Logger;
  readonly #onChange: (names: readonly string[]) => void;
  readonly #extraNames: () => Iterable<string>;
  // Unchanged files are not parsed again on every reload (1,000 manifests: ~250 ms -> ~20 ms).
  readonly #cache = new ManifestCache();
  #desired: Desired = { apps: new Map(), invalid: [], errors: [] };
  #records = new Set<string>();
  #reading: Promise<void> | undefined;
  #readAgain: Promise<void> | undefined;

  constructor(options: DesiredStateOptions) {
    this.#appsDir = options.appsDir;
    this.#applications = options.applications ?? [];
    this.#store = options.store;
    this.#log = options.log;
    this.#onChange = options.onChange;
    this.#extraNames = options.extraNames ?? (() => []);
  }

  /** The manifests as last read. */
  get current(): Desired {
    return this.#desired;
  }

  /** The first read: apps.d and the record names. Rejects when either cannot be read. */
  async load(): Promise<void> {
    this.#desired = await this.#read();
    await this.refreshRecords();
    logInvalid(this.#desired, this.#log);
  }

  /** Lists the record names again (a resync catches records written by another process). */
  async refreshRecords(): Promise<void> {
    this.#records = new Set((await this.#store.listRecords()).map((r) => r.name));
  }

  /** A reconcile wrote (or found) a record for `name`. */
  noteRecord(name: string): void {
    this.#records.add(name);
  }

  /** Every name a full reconcile covers: manifests (valid or not), records, and the extra names. */
  names(): string[] {
    const names = new Set<string>([...this.#desired.apps.keys(), ...this.#records, ...this.#extraNames()]);
    for (const f of this.#desired.invalid) if (f.name) names.add(f.name);
    return [...names];
  }

  /**
   * Re-reads apps.d and reports the apps whose manifest (or its validity) changed. One read at a
   * time, and calls made during a read coalesce into one more read after it: two overlapping
   * reads could finish out of order and leave the older folder state in place. Never rejects:
   * a folder that cannot be read keeps the manifests as they were.
   */
  reload(): Promise<void> {
    if (!this.#reading) {
      this.#reading = this.#reloadOnce().finally(() => {
        this.#reading = undefined;
      });
      return this.#reading;
    }
    this.#readAgain ??= this.#reading.then(() => {
      this.#readAgain = undefined;
      return this.reload();
    });
    return this.#readAgain;
  }

  async #reloadOnce(): Promise<void> {
    let next: Desired;
    try {
      next = await this.#read();
    } catch (err) {
      this.#log.error(
        { err: messageOf(err) },
        'cannot read the apps folder; keeping the manifests as they were',
      );
      return;
    }
    const changed = changedNames(this.#desired, next);
    this.#desired = next;
    logInvalid(next, this.#log);
    // The empty-set guard is decided by the planner; queue everything so each app sees it.
    this.#onChange(next.apps.size === 0 && this.#records.size > 0 ? this.names() : changed);
  }

  async #read(): Promise<Desired> {
    return toDesired(
      checkApplications(await loadManifests(this.#appsDir, { cache: this.#cache }), this.#applications),
    );
  }
}

/** Names whose manifest appeared, disappeared, changed, moved to another file, or changed validity. */
export function changedNames(before: Desired, after: Desired): string[] {
  const names = new Set<string>();
  for (const [name, loaded] of after.apps) {
    const was = before.apps.get(name);
    // A moved file matters too: the record keeps the file an invalid manifest is matched by.
    if (was?.hash !== loaded.hash || was.file !== loaded.file) names.add(name);
  }
  for (const name of before.apps.keys()) if (!after.apps.has(name)) names.add(name);
  const invalidKey = (d: Desired) =>
    new Map(d.invalid.map((f) => [f.name ?? f.file, JSON.stringify(f.errors)]));
  const a = invalidKey(before);
  const b = invalidKey(after);
  for (const [k, v] of b) if (a.get(k) !== v && after.apps.has(k) === false) names.add(k);
  for (const k of a.keys()) if (!b.has(k)) names.add(k);
  return [...names].filter((n) => APP_NAME.test(n));
}

function logInvalid(desired: Desired, log: Logger): void {
  for (const e of desired.errors) log.error({ file: e.file, line: e.line, column: e.column }, e.message);
}
