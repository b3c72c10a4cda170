import type { ErrorSummary } from '../errors.js';
import type { Dialect } from '../providers/provider.js';
import type { AppStatus, ReplicaAppStatus } from '../state/types.js';

/** Which application an app runs, as the admin API and `status` show it. */
export interface ApplicationView {
  readonly key: string | null;
  readonly name: string;
  readonly version: number;
}

/** One app's status on one live replica (SPEC §8.1: `replicas: [{id, status, startedAt}]`). */
export interface AppReplicaStatus {
  readonly id: string;
  /** `stopped` where the replica's heartbeat does not list the app. */
  readonly status: AppStatus;
  readonly startedAt: string | null;
}

/** One app as the admin API shows it (SPEC §6 `GET /_supervisor/api/apps`). */
export interface AppView {
  readonly name: string;
  readonly displayName: string;
  readonly status: AppStatus;
  /** Why the app is `stopped` when appvisor stopped it by itself: `idle` (SPEC §8.2); else null. */
  readonly statusReason?: 'idle' | null;
  readonly enabled: boolean;
  readonly startMode: 'on-first-visit' | 'with-main';
  readonly database: {
    readonly mode: 'new-database' | 'new-connection' | 'new-schema';
    readonly dialect: Dialect | null;
    readonly name: string;
    readonly schema: string | null;
  };
  readonly domains: readonly string[];
  readonly jwt: { readonly secret: 'own' | 'shared' };
  /**
   * The application the app runs (SPEC §8.6): its settings key (null: the default application),
   * its name and its code's data version. Absent where it is not known.
   */
  readonly application?: ApplicationView;
  readonly error: ErrorSummary | null;
  readonly startedAt: string | null;
  readonly lastReconciledAt: string | null;
  /** Extra fields for the UI (not in the SPEC shape, additive). */
  readonly file?: string | null;
  /** While orphaned with deletionPolicy: drop: when the scheduled drop is due (ISO time). */
  readonly dropAt?: string | null;
  /** The operator's last start/stop (a stop holds until a start). */
  readonly intent?: { readonly action: 'start' | 'stop'; readonly by: string; readonly at: string } | null;
  /** The app on every live replica, this one included (SPEC §8.1). */
  readonly replicas?: readonly AppReplicaStatus[];
  /**
   * Where the app's code runs (SPEC §8.3) and, for an isolated instance running here, the memory
   * it last reported in MiB (a child process's RSS, a worker's heap).
   */
  readonly isolation?: { readonly mode: 'shared' | 'worker' | 'process'; readonly memoryMb?: number };
}

/**
 * One replica as `GET /_supervisor/api/replicas` shows it (SPEC §8.1: `{id, host, pid, leader,
 * version, lastSeenAt}`; the rest are additive).
 */
export interface ReplicaView {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** Holds the unexpired leader lease. */
  readonly leader: boolean;
  /** The application version it runs. */
  readonly version: string;
  /** Its last heartbeat (ISO, by the database server's clock). */
  readonly lastSeenAt: string;
  /** Seen within three heartbeats; a dead replica shows until its row is pruned (an hour). */
  readonly live: boolean;
  /** The replica that answered this request. */
  readonly self: boolean;
  readonly startedAt: string;
  readonly appvisorVersion: string;
  readonly application: string;
  /** Settings `database.connectionBudget` of that replica. */
  readonly connectionBudget: number;
  /** Apps whose manifest in that replica's apps.d differs from what is applied. */
  readonly drift: readonly string[];
  /** The apps that are not stopped there (an absent app is `stopped`). */
  readonly apps: Readonly<Record<string, ReplicaAppStatus>>;
}

/** `GET /_supervisor/api/cluster`: the replicas' connection budgets against the server's limit. */
export interface ClusterView {
  /** The main database server's max_connections; null on SQLite (one replica, no server). */
  readonly maxConnections: number | null;
  /** Live replicas. */
  readonly replicas: number;
  /** This replica's budget. */
  readonly connectionBudget: number;
  /** The live replicas' budgets added up. */
  readonly budgetTotal: number;
  /** Set when budgetTotal exceeds maxConnections. */
  readonly warning?: string;
}

/** A status change, as fed to SSE, metrics and the log from one place. */
export interface StatusEvent {
  readonly app: string;
  readonly status: AppStatus;
  readonly previous: AppStatus | null;
  readonly error: ErrorSummary | null;
  readonly at: string;
}
