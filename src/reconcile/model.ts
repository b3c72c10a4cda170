import type { ErrorCode, ErrorSummary } from '../errors.js';
import type { AppManifest, InvalidFile, LoadedManifest, ManifestError } from '../manifests/types.js';
import type { Dialect, Observation } from '../providers/provider.js';
import type { AppRecord, AppStatus } from '../state/types.js';

/** The actions of SPEC §5, in the order the executor carries them out for one app. */
export const ACTIONS = [
  'refuse',
  'sweep',
  'create-database',
  'create-schema',
  'adopt-database',
  'generate-secret',
  'create-record',
  'update-record',
  'upgrade',
  'stop',
  'restart',
  'start',
  'update-routes',
  'orphan',
  'drop-database',
  'drop-schema',
] as const;
export type Action = (typeof ACTIONS)[number];

/** The sign a human plan line starts with. */
export const ACTION_SIGN: Readonly<Record<Action, '+' | '~' | '-' | '!'>> = {
  refuse: '!',
  sweep: '-',
  'create-database': '+',
  'create-schema': '+',
  'adopt-database': '+',
  'generate-secret': '+',
  'create-record': '+',
  'update-record': '~',
  upgrade: '~',
  stop: '-',
  restart: '~',
  start: '+',
  'update-routes': '~',
  orphan: '-',
  'drop-database': '-',
  'drop-schema': '-',
};

/** Where an app's database lives, resolved from its manifest and the main database. */
export interface DatabaseTarget {
  readonly dialect: Dialect;
  /** Redacted server description. */
  readonly server: string;
  /** 'main' for the main server, or the manifest's connection URL. */
  readonly serverRef: 'main' | { readonly url: string };
  readonly kind: 'database' | 'schema';
  /** The database (for schemas: the main database that holds the schema). */
  readonly database: string;
  readonly schema?: string;
}

/** Desired state: the valid manifests (by name) and the files that are invalid. */
export interface Desired {
  readonly apps: ReadonlyMap<string, LoadedManifest>;
  readonly invalid: readonly InvalidFile[];
  /** Errors to report (all invalid files' errors, flattened). */
  readonly errors: readonly ManifestError[];
}

/** What the runtime knows about a running app (only in `serve`). */
export interface RuntimeState {
  readonly status: AppStatus;
  /** Hash of the spec the running instance was started with. */
  readonly specHash?: string;
  /** The manifest the running instance was started on, when the runtime knows it. */
  readonly spec?: AppManifest;
  /**
   * Requests and WebSockets of the app: whether one is open now, and when the last one ended
   * (ms since the epoch; its start when none came since). What an idle stop is decided on.
   */
  readonly activity?: { readonly busy: boolean; readonly idleSince: number };
  /** Set while the app is stopped for idleness: when it was (ms since the epoch). */
  readonly idleStoppedAt?: number;
  /** Set when an isolated instance ran and ended (status `error`): its code, e.g. APP_UNRESPONSIVE. */
  readonly crashed?: string;
}

/**
 * Something appvisor left half-made on a server, carrying this store's marker for the app
 * (a PostgreSQL `_avtmp_*` database of a create killed before its rename, a SQLite `.tmp` file).
 */
export interface Leftover {
  /** The object's name on its server (database name or file name). */
  readonly name: string;
  /** Where it is (the app's target, with `database` naming the leftover). */
  readonly target: DatabaseTarget;
}

/** Actual state for one app: its record, what the servers say, and the runtime. */
export interface ActualApp {
  readonly record?: AppRecord;
  /** Observation of the desired target (database or schema) on its server. */
  readonly observed?: Observation;
  /** Observation of the target the record says appvisor created, when it differs from the desired one. */
  readonly observedRecorded?: Observation;
  readonly hasSecret: boolean;
  readonly runtime?: RuntimeState;
  /** The version the app's data is at (its applied migrations), when known. */
  readonly dataVersion?: number;
  /**
   * Set when the app's target could not be observed (its server is unreachable): nothing can
   * be decided for it, so the plan shows it as blocked instead of guessing.
   */
  readonly observeError?: ErrorSummary;
  /** Leftovers of interrupted creates that carry this store's marker for this app. */
  readonly leftovers?: readonly Leftover[];
  /**
   * Whether the app's data is empty (src/runtime/application-move.ts), observed only when the
   * record names another owning application than the manifest's: empty data may move.
   */
  readonly dataEmpty?: boolean;
  /**
   * Set when the plan is made from a state export (`plan --state`) that could not have observed
   * something this app needs, e.g. a server the export does not know: why. What was not seen is
   * taken as an online plan would most likely find it (absent), and the plan's steps say so.
   */
  readonly unobserved?: string;
}

export interface Actual {
  readonly apps: ReadonlyMap<string, ActualApp>;
  readonly storeId: string | undefined;
  /** Whether the main app's secret exists. */
  readonly hasMainSecret: boolean;
  /** True when a server is running apps (serve); false for the CLI's plan/apply. */
  readonly live: boolean;
}

export interface Step {
  readonly app: string;
  readonly action: Action;
  /** Human-readable reason; never contains secrets or passwords. */
  readonly detail: string;
  /**
   * For database/schema steps: the target. For create-record: the target the record's app uses
   * (when no create/adopt step precedes it, the target exists already with appvisor's marker for
   * this app, left by an interrupted run).
   */
  readonly target?: DatabaseTarget;
  /** For refuse: the error code behind it. */
  readonly code?: ErrorCode;
  /**
   * A scheduled step (a drop after its grace): shown in every plan, carried out only once this
   * ISO time has come. The executor skips it before then.
   */
  readonly dueAt?: string;
  /** For orphan with deletionPolicy: drop: when the drop will be due (written to the record). */
  readonly dropAt?: string;
  /** For update-record: the record names no owning application; the app's database is checked and marked. */
  readonly claim?: boolean;
  /**
   * For update-record: the app's data is empty and moves from this application (its name) to the
   * manifest's; the app's database is checked again and its owner rewritten.
   */
  readonly moveFrom?: string;
  /** For a restart (or a move) that changes the app's application: the manifest's before and after. */
  readonly application?: { readonly from: string; readonly to: string };
  /**
   * For start and stop: the operator's intent this step carries out (its time: a failed start is
   * retried now; the run's history entry names who asked).
   */
  readonly requestedAt?: string;
  /**
   * For an idle stop: the end of the last activity the plan saw (ms since the epoch). The app is
   * stopped only if nothing came since and nothing is open.
   */
  readonly idleSince?: number;
  /**
   * For update-routes on a follower replica: visits are answered with this error instead of
   * being served (503 with Retry-After: the load balancer tries another replica), e.g. data
   * migrated past this replica's code during a rolling upgrade.
   */
  readonly hold?: { readonly code: HoldCode; readonly params: Readonly<Record<string, string | number>> };
  /**
   * For update-routes on a follower: the leader migrates the app's data now; visits wait for it.
   * For a held-back upgrade (refuse UPGRADE_HELD_BACK) whose replica is leaving: the same here.
   */
  readonly awaitUpgrade?: true;
}

/** Why a follower holds an app back from its visitors. */
export type HoldCode = 'APP_DATA_NEWER' | 'APP_NEEDS_UPGRADE' | 'APP_STARTING';

/** A named application as a plan sees it. */
export interface PlannedApplication {
  /** Its `name`: what an app's data records as its owner. */
  readonly name: string;
  /** Its code's data version. */
  readonly version: number;
  /** As PlanOptions.upgradeHeldBy, for this application's apps. */
  readonly upgradeHeldBy?: PlanOptions['upgradeHeldBy'];
}

export interface PlanOptions {
  readonly allowEmpty?: boolean;
  /** Dialect and redacted server of the main database, to resolve targets. */
  readonly main: { readonly dialect: Dialect; readonly server: string; readonly database: string };
  /** The version the application's code migrates to; without it no upgrade step is planned. */
  readonly codeVersion?: number;
  /**
   * The application the code is (its `name`): an app whose data belongs to another application
   * is refused. Without it nothing is checked (tests of unrelated rules).
   */
  readonly application?: string;
  /**
   * The named applications of settings `applications`, by key (SPEC §8.6): an app whose manifest
   * names one is planned with its name and version (identity check, install, upgrade); the
   * others with `application` and `codeVersion`. A key missing here is refused for that app.
   */
  readonly applications?: ReadonlyMap<string, PlannedApplication>;
  /**
   * The time the plan is made for (ms since the epoch): what decides whether a scheduled drop is
   * due. The planner reads no clock itself; without it no drop is due.
   */
  readonly now?: number;
  /** Grace between a removal and its drop when the manifest sets no dropAfter. @default 24 h */
  readonly deletionGraceMs?: number;
  /**
   * The live replica that runs an older application version than this code, if any: the leader
   * does not migrate existing data past it (a rolling upgrade), and says so instead.
   */
  readonly upgradeHeldBy?: {
    readonly replica: string;
    readonly version: number;
    /** It drains before it stops: it serves no new visits, and the data moves once it is gone. */
    readonly leaving?: true;
  };
  /** Settings `idleStop`: how long an app may serve nothing before it is stopped, when its manifest says nothing; 0 is off. @default 0 */
  readonly idleStopMs?: number;
}

export interface Plan {
  readonly changes: readonly Step[];
  readonly errors: readonly ManifestError[];
  /** Set when the empty-set guard held back removals. */
  readonly guard?: string;
}

export type { AppManifest };
