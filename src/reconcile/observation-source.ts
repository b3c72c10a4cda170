/**
 * Where observeAll/observeApp learn what the database servers hold: the live servers (plan,
 * apply, serve), or a `state export` file (`plan --state`: offline, no connection at all). The
 * observing logic is the same for both; only this answers differently.
 */
import type { Observation, OpOptions, Provider, Leftover as ServerLeftover } from '../providers/provider.js';
import type { ProviderSet } from '../providers/set.js';
import { isDataEmpty } from '../runtime/application-move.js';
import type { DatabaseTarget } from './model.js';

/** An observation, and when the source could not have made it, why (the answer is then a guess). */
export interface SourcedObservation extends Observation {
  /**
   * Set when the source did not see this target (e.g. a server the export does not know): the
   * observation is what an online plan would most likely find, and the plan says so.
   */
  readonly unobserved?: string;
}

/** What observing needs to know about the servers; every method only reads. */
export interface ObservationSource {
  /** Whether the database or schema `target` names exists, and its ownership marker. */
  observe(target: DatabaseTarget, opts: OpOptions): Promise<SourcedObservation>;
  /** The marked leftovers on the server of `target` (every app's; observe keeps its own). */
  leftovers(target: DatabaseTarget, opts: OpOptions): Promise<readonly ServerLeftover[]>;
  /** Whether the app data at `target` is empty (src/runtime/application-move.ts). */
  dataEmpty(target: DatabaseTarget): Promise<SourcedAnswer>;
}

/** A yes/no answer, and why it is a guess when the source could not check it. */
export interface SourcedAnswer {
  readonly value: boolean;
  readonly unobserved?: string;
}

/** How long one listing of a server's leftovers serves the runs that follow it (serve, apply). */
export const SHARED_LEFTOVERS_FRESH_MS = 2000;

export interface LiveObservationOptions {
  /**
   * How long a server's listing of leftovers is used again, for a source shared by many runs
   * (serve's and apply's per-app reconciles). Listing reads every database or file of the
   * server, so once per app would cost a fleet's size squared (2,000 SQLite apps: 3 s). A stale
   * listing is harmless: a leftover it misses is swept next time, one already gone is left as
   * it is (a sweep checks the owner marker first). @default the source's lifetime (one plan)
   */
  readonly leftoversFreshMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Observes the live servers through the providers. Leftovers are listed once per server. */
export function liveObservations(
  providers: ProviderSet,
  options: LiveObservationOptions = {},
): ObservationSource {
  const { leftoversFreshMs = Number.POSITIVE_INFINITY, now = Date.now } = options;
  const listed = new Map<
    Provider,
    { readonly at: number; readonly list: Promise<readonly ServerLeftover[]> }
  >();
  return {
    observe(target, opts) {
      const provider = providers.forTarget(target);
      return target.kind === 'schema'
        ? provider.observeSchema(target.schema!, opts)
        : provider.observeDatabase(target.database, opts);
    },
    leftovers(target, opts) {
      const provider = providers.forTarget(target);
      const known = listed.get(provider);
      if (known && now() - known.at < leftoversFreshMs) return known.list;
      const list = provider.listLeftovers(opts);
      listed.set(provider, { at: now(), list });
      // A failed listing is not kept: the next run asks the server again.
      list.catch(() => {
        if (listed.get(provider)?.list === list) listed.delete(provider);
      });
      return list;
    },
    async dataEmpty(target) {
      const scope = target.kind === 'schema' ? { schema: target.schema! } : {};
      const value = await providers.forTarget(target).withConnection(target.database, scope, isDataEmpty);
      return { value };
    },
  };
}
