/**
 * Actual state: what the state store knows, checked against what the database servers hold (as
 * an ObservationSource tells it: the servers themselves, or a `state export` for an offline plan).
 * Read-only: observing never creates, alters or drops anything (so `plan` can use it).
 */
import { AppvisorError } from '../errors.js';
import type { AppManifest } from '../manifests/types.js';
import { translateDbError } from '../providers/errors.js';
import type { Observation, OpOptions } from '../providers/provider.js';
import type { AppRecord, StateReader } from '../state/types.js';
import type {
  Actual,
  ActualApp,
  DatabaseTarget,
  Desired,
  Leftover,
  PlanOptions,
  RuntimeState,
} from './model.js';
import type { ObservationSource, SourcedAnswer, SourcedObservation } from './observation-source.js';
import { ownerMarker } from './owner.js';
import { isTargetOf, resolveTarget, targetOfItem } from './target.js';

export interface ObserveDeps {
  readonly store: Pick<StateReader, 'listRecords' | 'getRecord' | 'getSecret' | 'storeId'>;
  /** What the servers hold: the live servers (liveObservations) or a state export. */
  readonly source: ObservationSource;
  readonly main: PlanOptions['main'];
  /** The runtime's view of an app, in `serve`. */
  readonly runtime?: (name: string) => RuntimeState | undefined;
  /**
   * The name of the application a manifest picks (SPEC §8.6): when the record names another
   * owner, whether the app's data is empty is observed too (empty data may move). Without it,
   * never observed.
   */
  readonly applicationOf?: (manifest: AppManifest) => string | undefined;
}

/** An observation without the source's note, which is collected into the app's `unobserved`. */
function noted(seen: SourcedObservation, notes: Set<string>): Observation {
  const { unobserved, ...observation } = seen;
  if (unobserved !== undefined) notes.add(unobserved);
  return observation;
}

/** Observes one app: its record, its desired target on the server, and its secret. */
export async function observeApp(
  name: string,
  desired: Desired,
  deps: ObserveDeps,
  record: AppRecord | undefined,
  opts: OpOptions = {},
): Promise<ActualApp> {
  const loaded = desired.apps.get(name);
  const target = loaded ? resolveTarget(loaded.manifest, deps.main) : undefined;
  let observed: Observation | undefined;
  let observedRecorded: Observation | undefined;
  let leftovers: Leftover[] = [];
  // Why what the source answered is a guess (an export that could not have seen it).
  const notes = new Set<string>();
  if (target && !(target instanceof AppvisorError)) {
    observed = noted(await deps.source.observe(target, opts), notes);
    leftovers = await ownLeftovers(name, target, deps, opts);
  }
  // The recorded object, when the manifest now points elsewhere (drift of the old one matters
  // only for drops, which observe at drop time): only for items on the main server.
  const recordedItem = record?.inventory.find(
    (i) => !(target && !(target instanceof AppvisorError) && isTargetOf(i, target)),
  );
  if (
    recordedItem &&
    recordedItem.server === deps.main.server &&
    recordedItem.dialect === deps.main.dialect
  ) {
    const t = targetOfItem(recordedItem, 'main');
    observedRecorded = noted(await deps.source.observe(t, opts), notes);
  }
  const empty =
    loaded && target && !(target instanceof AppvisorError) && observed?.exists
      ? await emptyIfMoving(loaded.manifest, target, record, deps)
      : undefined;
  if (empty?.unobserved !== undefined) notes.add(empty.unobserved);
  const dataEmpty = empty?.value;
  const hasSecret = record?.hasSecret === true || (await deps.store.getSecret(name)) !== undefined;
  const runtime = deps.runtime?.(name);
  return {
    ...(record ? { record } : {}),
    ...(observed ? { observed } : {}),
    ...(observedRecorded ? { observedRecorded } : {}),
    hasSecret,
    ...(runtime ? { runtime } : {}),
    ...(record?.dataVersion !== undefined ? { dataVersion: record.dataVersion } : {}),
    ...(leftovers.length > 0 ? { leftovers } : {}),
    ...(dataEmpty !== undefined ? { dataEmpty } : {}),
    ...(notes.size > 0 ? { unobserved: [...notes].join('; ') } : {}),
  };
}

/**
 * Whether the app's data is empty, looked at only when its record names another owner than the
 * manifest's application (then it decides between a move and a refusal). Only SELECTs.
 */
async function emptyIfMoving(
  m: AppManifest,
  target: DatabaseTarget,
  record: AppRecord | undefined,
  deps: ObserveDeps,
): Promise<SourcedAnswer | undefined> {
  const wanted = deps.applicationOf?.(m);
  if (record?.application === undefined || wanted === undefined || wanted === record.application) {
    return undefined;
  }
  return deps.source.dataEmpty(target);
}

/** The leftovers on the app's server that carry this store's marker for this very app. */
async function ownLeftovers(
  name: string,
  target: DatabaseTarget,
  deps: ObserveDeps,
  opts: OpOptions,
): Promise<Leftover[]> {
  const storeId = deps.store.storeId;
  if (storeId === undefined) return [];
  const owner = ownerMarker(storeId, name);
  const all = await deps.source.leftovers(target, opts);
  // Schemas are created in one transaction, but a restore killed mid-way leaves temporaries of a
  // new-schema app too (a staging database, a temporary schema); the provider's sweepLeftover
  // tells them apart by name.
  return all
    .filter((l) => l.owner === owner)
    .map((l) => ({ name: l.name, target: leftoverTarget(target, l.name) }));
}

/** A leftover on the app's server, as a sweep step's target: named by its database field. */
function leftoverTarget(target: DatabaseTarget, name: string): DatabaseTarget {
  const { schema: _schema, ...server } = target;
  return { ...server, kind: 'database', database: name };
}

/**
 * An app's observation failure in registry terms: the providers and the store answer registry
 * errors already; anything else is translated as the dialect of the app's server says (the main
 * server's when the app's target cannot be resolved).
 */
function observeFailure(
  err: unknown,
  name: string,
  desired: Desired,
  main: PlanOptions['main'],
): AppvisorError {
  if (err instanceof AppvisorError) return err;
  const loaded = desired.apps.get(name);
  const target = loaded ? resolveTarget(loaded.manifest, main) : undefined;
  const where = target && !(target instanceof AppvisorError) ? target : main;
  return translateDbError(err, {
    dialect: where.dialect,
    server: where.server,
    operation: `observe app ${name}`,
  });
}

/**
 * Observes every app named by a manifest or a record. Observations run with bounded
 * concurrency so a plan over thousands of apps stays quick without flooding a server.
 */
export async function observeAll(desired: Desired, deps: ObserveDeps, opts: OpOptions = {}): Promise<Actual> {
  const records = await deps.store.listRecords();
  const byName = new Map(records.map((r) => [r.name, r]));
  const names = [...new Set([...desired.apps.keys(), ...byName.keys()])];
  const apps = new Map<string, ActualApp>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++]!;
      const record = byName.get(name);
      try {
        apps.set(name, await observeApp(name, desired, deps, record, opts));
      } catch (err) {
        // One unreachable server blocks only the apps on it; the plan goes on for the rest.
        const observeError = observeFailure(err, name, desired, deps.main).toJSON();
        apps.set(name, {
          ...(record ? { record } : {}),
          hasSecret: record?.hasSecret ?? false,
          observeError,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, names.length) }, worker));
  const hasMainSecret = (await deps.store.getSecret('main')) !== undefined;
  return { apps, storeId: deps.store.storeId, hasMainSecret, live: deps.runtime !== undefined };
}
