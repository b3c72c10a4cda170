import type { EventEmitter } from 'node:events';
import type { AppView, ClusterView, ReplicaView, StatusEvent } from '../runtime/view.js';
import type { RotationResult } from '../secrets/rotate.js';
import type {
  AppFigureSeries,
  FigureSummary,
  RawAppFigures,
  RawFigureSummary,
} from '../serve/app-figures.js';
import type { AppLogLine } from '../serve/app-logs.js';
import type { HistoryEntry } from '../state/types.js';

/** The `plan --json` object (SPEC §5). */
export interface PlanJson {
  readonly changes: readonly {
    readonly app: string;
    readonly action: string;
    readonly detail: string;
    /** A scheduled step (a drop after its grace): carried out once this ISO time has come. */
    readonly dueAt?: string;
    /** A restart (or data move) for a change of application: the manifest's before and after (`default`: none named). */
    readonly application?: { readonly from: string; readonly to: string };
  }[];
  readonly errors: readonly {
    readonly file: string;
    readonly line: number;
    readonly column: number;
    readonly message: string;
  }[];
  readonly guard?: string;
}

/** Events the admin surface listens to. */
export interface AdminEventMap {
  status: [StatusEvent];
  /** A reconcile finished (for metrics). */
  reconcile: [{ app: string; outcome: 'ok' | 'retry' | 'terminal'; durationMs: number }];
  /** An app start finished (for metrics). */
  start: [{ app: string; ok: boolean; durationMs: number }];
  /** The event loop ran again after a block the watcher reported (serve/loop-watcher.ts; for metrics). */
  loopBlocked: [{ app: string | undefined; ms: number }];
}

/**
 * Per-app operations on a running server (SPEC §8.4), carried out by the leader, each
 * serialized with the app's reconciles; `by` is written to the app's history.
 */
export interface AdminOperations {
  /** Backs `app` up into the file `out`; `name` is the archive's usual file name. */
  backup(
    app: string,
    out: string,
    by: string,
  ): Promise<{ readonly file: string; readonly bytes: number; readonly name: string }>;
  /** Restores archive `file` into `into`: its own app, or a new app of that name (a clone). */
  restore(file: string, into: string, opts: { readonly keepSecret?: boolean }, by: string): Promise<object>;
  /** A new app `dest` with a copy of `src`'s data and a new secret. */
  clone(src: string, dest: string, opts: { readonly keepSecret?: boolean }, by: string): Promise<object>;
}

/** What the admin API needs from the supervisor. Implemented by the serve wiring. */
export interface AdminBackend {
  listApps(): Promise<AppView[]>;
  getApp(name: string): Promise<AppView | undefined>;
  /**
   * Records an operator's start/stop as intent on the app's record and queues its reconcile;
   * resolves once recorded (does not wait for the start or stop). `by` names who asked.
   */
  start(name: string, by: string): Promise<AppView>;
  stop(name: string, by: string): Promise<AppView>;
  /**
   * The leader to pass the leader's work on to, when another replica leads: its id and admin URL
   * from its heartbeat (undefined when this replica leads, or no leader with a URL is known).
   */
  leaderElsewhere?(): Promise<{ readonly id: string; readonly url: string } | undefined>;
  /** Backup, restore and clone (absent: those routes are not found). */
  readonly operations?: AdminOperations;
  /**
   * Rotates the app's JWT secret (`main`: the main app's) with `graceMs` for the old one, on
   * this replica if it leads (LOCK_HELD naming the leader otherwise); the running apps take the
   * new secret without a restart. `by` is written to the app's history.
   */
  rotateSecret?(name: string, graceMs: number, by: string): Promise<RotationResult>;
  plan(): Promise<PlanJson>;
  history(name: string): Promise<HistoryEntry[]>;
  /** Every replica on the state store, dead ones until they are pruned (SPEC §8.1). */
  listReplicas(): Promise<ReplicaView[]>;
  /** The live replicas' connection budgets against the server's max_connections. */
  cluster(): Promise<ClusterView>;
  /** Whether the first reconcile is done (readyz). */
  ready(): boolean;
  /**
   * Why this replica stays out of a load balancer's rotation although its first reconcile is
   * done (readyz 503 `waiting`): during a rolling upgrade a replica on newer code serves once no
   * live replica runs the older one. Undefined: nothing to wait for.
   */
  waitingFor?(): string | undefined;
  readonly events: EventEmitter<AdminEventMap>;
  /** The apps' recent log lines on this replica (absent: the logs route is not found). */
  readonly logs?: AppLogSource;
  /**
   * The other live replicas' admin URLs, whose log lines and figures an answer includes
   * (peer-requests.ts); absent: this replica's only.
   */
  livePeers?(): Promise<readonly { readonly id: string; readonly url: string }[]>;
  /** The apps' live figures on this replica (absent: the figures routes are not found). */
  readonly figures?: AppFigureSource;
  /** This replica's id, which the figures' `replicas` name (absent: `local`). */
  readonly replicaId?: string;
}

/**
 * Where the figures routes read each app's last hour (serve/app-figures.ts keeps them): this
 * replica's raw slots, which the routes merge with the other live replicas' (figures-fanout.ts)
 * and turn into points on this replica's clock.
 */
export interface AppFigureSource {
  raw(app: string): RawAppFigures;
  rawSummary(apps: readonly string[]): RawFigureSummary;
  seriesOf(raw: RawAppFigures): AppFigureSeries;
  summaryOf(raw: RawFigureSummary): FigureSummary;
}

/** Where the logs route reads an app's lines (serve/app-logs.ts keeps them). */
export interface AppLogSource {
  lines(app: string, query: { readonly since?: number; readonly limit?: number }): AppLogLine[];
  /** Each new line of `app`, until the returned function is called. */
  follow(app: string, deliver: (line: AppLogLine) => void): () => void;
}
