/**
 * A rolling upgrade of the application (SPEC §8.1, issue 11): the leader does not migrate an
 * app's existing data while a live replica still runs an older application version, which could
 * not serve the migrated data. This finds that replica from the heartbeats.
 */
import type { PlanOptions } from '../reconcile/model.js';
import type { ReplicaList, StateStore } from '../state/types.js';
import { isLive } from './replica-views.js';

/**
 * The live replica other than `self` with the oldest version below `codeVersion` of the default
 * application, or of the named `application` (its `name`; SPEC §8.6): each application's apps
 * wait only for replicas on an older version of that application.
 */
export function olderReplica(
  list: ReplicaList,
  self: string,
  codeVersion: number,
  heartbeatMs: number,
  application?: string,
): PlanOptions['upgradeHeldBy'] {
  let staying: { replica: string; version: number } | undefined;
  let leaving: { replica: string; version: number; leaving: true } | undefined;
  for (const r of list.replicas) {
    const version = versionOf(r, application);
    if (r.id === self || !isLive(list, r, heartbeatMs) || !Number.isFinite(version)) continue;
    if (version >= codeVersion) continue;
    if (r.info.leaving) {
      if (leaving === undefined || version < leaving.version)
        leaving = { replica: r.id, version, leaving: true };
    } else if (staying === undefined || version < staying.version) {
      staying = { replica: r.id, version };
    }
  }
  // One that stays is what a newer replica waits for; one that drains only holds the data back.
  return staying ?? leaving;
}

/**
 * The version of the default application (the row's `version`) or of the named one that replica
 * `r` runs; NaN when it runs no such application (a heartbeat without `applications` is from an
 * appvisor that runs the default application only).
 */
function versionOf(r: ReplicaList['replicas'][number], application: string | undefined): number {
  if (application === undefined) return Number(r.version);
  const entry = r.info.applications?.find((a) => a.name === application);
  return entry === undefined ? Number.NaN : Number(entry.version);
}

/** `olderReplica` over the store's heartbeats, read at most twice a second (every run of the leader asks). */
export interface UpgradeGate {
  /** The live replica an upgrade waits for, read afresh (at most twice a second). */
  check(): Promise<PlanOptions['upgradeHeldBy']>;
  /** The answer of the last check (undefined before one, or when nothing holds an upgrade back). */
  last(): PlanOptions['upgradeHeldBy'];
}

export function createUpgradeGate(
  store: Pick<StateStore, 'listReplicas'>,
  opts: {
    readonly self: string;
    readonly codeVersion: number;
    readonly heartbeatMs: number;
    /** A named application's `name`; absent: the default application. */
    readonly application?: string;
  },
): UpgradeGate {
  let cached: { at: number; value: Promise<PlanOptions['upgradeHeldBy']> } | undefined;
  let last: PlanOptions['upgradeHeldBy'];
  return {
    check() {
      const now = Date.now();
      if (!cached || now - cached.at > 500) {
        const value = store.listReplicas().then((list) => {
          last = olderReplica(list, opts.self, opts.codeVersion, opts.heartbeatMs, opts.application);
          return last;
        });
        // A store that cannot be read holds nothing back here: the run fails on the store anyway.
        cached = { at: now, value: value.catch(() => undefined) };
      }
      return cached.value;
    },
    last: () => last,
  };
}

/**
 * The code a replica runs: the default application's version and each named application's
 * (SPEC §8.6), by the application's `name`. A bare number: the default application only.
 */
export type CodeVersions =
  | number
  | {
      readonly version: number;
      readonly applications?: readonly { readonly name: string; readonly version: number }[];
    };

/** Whether replica `r` runs a newer version than `code` of any application `code` has. */
function runsNewer(r: ReplicaList['replicas'][number], code: CodeVersions): boolean {
  const own = typeof code === 'number' ? { version: code } : code;
  if (Number(r.version) > own.version) return true;
  for (const a of own.applications ?? []) {
    const version = versionOf(r, a.name);
    if (Number.isFinite(version) && version > a.version) return true;
  }
  return false;
}

/**
 * The live replicas other than `self` on newer code (of any application `self` runs) that stay
 * out of rotation for the older ones and would join it once `self` is gone: none while another
 * live replica that is not leaving runs nothing newer than `self` (they go on waiting for that
 * one, and it serves).
 */
export function waitingOnOlder(
  list: ReplicaList,
  self: string,
  code: CodeVersions,
  heartbeatMs: number,
): string[] {
  const live = list.replicas.filter((r) => r.id !== self && isLive(list, r, heartbeatMs));
  const anotherOld = live.some((r) => !r.info.leaving && !runsNewer(r, code));
  if (anotherOld) return [];
  return live.filter((r) => runsNewer(r, code) && r.info.waiting === true).map((r) => r.id);
}

/**
 * The handover before a drain: this replica has said it is leaving; the replicas on newer code
 * that waited for it now see that and come into rotation. Until their heartbeats say so (or
 * `timeoutMs` passes), this one stays in rotation, so a load balancer always has a replica to
 * send a visit to. Without it the last old replica leaves the rotation before any new one
 * joins, and the balancer answers its own 503 for a second or two.
 */
export async function handOver(
  store: Pick<StateStore, 'listReplicas'>,
  opts: {
    readonly self: string;
    /** What `self` runs (see CodeVersions). */
    readonly codeVersion: CodeVersions;
    readonly heartbeatMs: number;
    readonly timeoutMs: number;
    readonly pollMs?: number;
  },
): Promise<{
  readonly waitedFor: readonly string[];
  readonly waitedMs: number;
  readonly stillWaiting: readonly string[];
}> {
  const startedAt = Date.now();
  let waitedFor: readonly string[] | undefined;
  for (;;) {
    const list = await store.listReplicas().catch(() => undefined);
    // A store that cannot be read hands over nothing: the drain goes on as without replicas.
    const waiting = list ? waitingOnOlder(list, opts.self, opts.codeVersion, opts.heartbeatMs) : [];
    waitedFor ??= waiting;
    const waitedMs = Date.now() - startedAt;
    if (waiting.length === 0 || waitedMs >= opts.timeoutMs)
      return { waitedFor, waitedMs, stillWaiting: waiting };
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 100));
  }
}
