/**
 * The replicas as the admin API shows them: the heartbeat rows read at most once per
 * `cacheMs` (the UI polls, and one request reads them once), aged by the database server's
 * clock, with this replica's own app statuses taken from its runtime rather than its last row.
 */
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import type { ClusterView, ReplicaView } from '../runtime/view.js';
import type { ReplicaAppStatus, ReplicaList, ReplicaRecord, StateStore } from '../state/types.js';
import type { ReplicaSource } from './views.js';

/** A row seen within this many heartbeats belongs to a live replica. */
export const LIVE_HEARTBEATS = 3;

/** Whether replica `r` of `list` is live: seen within {@link LIVE_HEARTBEATS} heartbeats. */
export function isLive(
  list: ReplicaList,
  r: Pick<ReplicaRecord, 'lastSeenAt'>,
  heartbeatMs: number,
): boolean {
  return list.nowMs - r.lastSeenAt <= LIVE_HEARTBEATS * heartbeatMs;
}
/** @default how long one read of the replicas table answers for */
export const REPLICAS_CACHE_MS = 500;
/** max_connections changes only with a server restart: read it seldom. */
const MAX_CONNECTIONS_CACHE_MS = 60_000;

export interface ReplicaViewOptions {
  readonly store: Pick<StateStore, 'listReplicas' | 'serverMaxConnections'>;
  readonly log: Logger;
  /** This replica. */
  readonly self: {
    readonly id: string;
    /** Its heartbeat interval: a row older than three of them is a dead replica's. */
    readonly heartbeatMs: number;
    readonly connectionBudget: number;
    /** This replica's own view of an app right now (undefined: stopped). */
    readonly app: (name: string) => ReplicaAppStatus | undefined;
  };
  /** @default 500 */
  readonly cacheMs?: number;
}

export interface ReplicaViews {
  listReplicas(): Promise<ReplicaView[]>;
  /** The live replicas for the app views (this one always among them), sorted by id. */
  sources(): Promise<ReplicaSource[]>;
  cluster(): Promise<ClusterView>;
}

export function createReplicaViews(options: ReplicaViewOptions): ReplicaViews {
  const { store, log, self } = options;
  const cacheMs = options.cacheMs ?? REPLICAS_CACHE_MS;
  let last: ReplicaList = { nowMs: 0, replicas: [] };
  let cached: { at: number; list: Promise<ReplicaList> } | undefined;
  let maxConnections: { at: number; value: Promise<number | undefined> } | undefined;

  /** The rows, read once per `cacheMs`; while the store is down, the last ones read. */
  const read = (): Promise<ReplicaList> => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.list;
    const list = store.listReplicas().then(
      (read) => {
        last = read;
        return read;
      },
      (err: unknown) => {
        log.warn({ err: messageOf(err) }, 'cannot read the replicas; showing the last ones read');
        return last;
      },
    );
    cached = { at: Date.now(), list };
    return list;
  };
  const readMaxConnections = (): Promise<number | undefined> => {
    if (maxConnections && Date.now() - maxConnections.at < MAX_CONNECTIONS_CACHE_MS)
      return maxConnections.value;
    const value = store.serverMaxConnections().catch((err: unknown) => {
      log.warn({ err: messageOf(err) }, "cannot read the server's max_connections");
      maxConnections = undefined;
      return undefined;
    });
    maxConnections = { at: Date.now(), value };
    return value;
  };
  const views = async (): Promise<ReplicaView[]> => {
    const list = await read();
    // By id in code-point order here: the server's collation may order them otherwise.
    return [...list.replicas].sort(byId).map((r) => ({
      id: r.id,
      host: r.host,
      pid: r.pid,
      leader: r.leader,
      version: r.version,
      lastSeenAt: new Date(r.lastSeenAt).toISOString(),
      live: r.id === self.id || isLive(list, r, self.heartbeatMs),
      self: r.id === self.id,
      startedAt: r.startedAt,
      appvisorVersion: r.info.appvisorVersion,
      application: r.info.application.name,
      connectionBudget: r.info.connectionBudget,
      drift: r.info.drift,
      apps: r.info.apps,
    }));
  };

  return {
    listReplicas: views,
    async sources() {
      const live = (await views()).filter((r) => r.live && !r.self);
      const sources: ReplicaSource[] = live.map((r) => ({ id: r.id, app: (name) => r.apps[name] }));
      // This replica knows its own statuses better than its last row: no heartbeat's delay.
      sources.push({ id: self.id, app: self.app });
      return sources.sort(byId);
    },
    async cluster() {
      const [replicas, max] = await Promise.all([views(), readMaxConnections()]);
      const live = replicas.filter((r) => r.live);
      // This replica counts even while its own row could not be written.
      const budgets = live.some((r) => r.self)
        ? live.map((r) => r.connectionBudget)
        : [...live.map((r) => r.connectionBudget), self.connectionBudget];
      const budgetTotal = budgets.reduce((a, b) => a + b, 0);
      const view: ClusterView = {
        maxConnections: max ?? null,
        replicas: budgets.length,
        connectionBudget: self.connectionBudget,
        budgetTotal,
      };
      if (max === undefined || budgetTotal <= max) return view;
      return {
        ...view,
        warning: `${budgets.length} live replica${budgets.length === 1 ? '' : 's'} may open ${budgetTotal} connections (their database.connectionBudget added up), more than the server's max_connections ${max}: lower database.connectionBudget or raise max_connections`,
      };
    },
  };
}

function byId(a: { readonly id: string }, b: { readonly id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
