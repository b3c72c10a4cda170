/**
 * The process adapter (settings `processAdapter`, env APP_PROCESS_ADAPTER): what runs app
 * instances. The runtime (routing and the lazy-start policy) and the reconciler talk to it
 * only through {@link AppProcessAdapter}, and hand it only an {@link InstanceSpec} — plain
 * JSON — so an adapter that runs each app in a worker thread or a child process can fill the
 * same interface without either of them changing. `local` (in this process) is the first.
 */
import type { EventEmitter } from 'node:events';
import type { Settings } from '../config/types.js';
import type { ErrorSummary } from '../errors.js';
import type { ReadyApp } from '../gateway/types.js';
import type { DatabaseTarget } from '../reconcile/model.js';
import type { AppStatus, SecretSet } from '../state/types.js';

/** The adapters this build has (settings `processAdapter`; anything else is a settings error). */
/** How long a start may take before it fails with APP_START_TIMEOUT, unless set otherwise. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;

export type ProcessAdapterKind = Settings['processAdapter'];

/**
 * Where an instance's database is. `provisioned`: the app's own database or schema, made by the
 * reconciler (the target as the planner resolved it). `main`: the main database (the main app).
 */
export type DatabaseSettings =
  | {
      readonly kind: 'provisioned';
      readonly target: DatabaseTarget;
      /** Connections of the instance's pool (server dialects). */
      readonly maxConnections?: number;
    }
  | {
      readonly kind: 'main';
      /** Settings `mainDatabase.adopt`: install beside tables appvisor did not create. */
      readonly adopt: boolean;
      readonly maxConnections?: number;
    };

/**
 * Which JWT secret the instance signs with, by reference: the adapter resolves it through its
 * secret source, so no secret is ever part of a spec. `own`: the app's own secret; `shared`: the
 * main app's. The main app's secret is always resolved too (shared apps accept its tokens).
 */
export interface SecretRef {
  readonly app: string;
  readonly mode: 'own' | 'shared';
}

/** The application module an instance runs (SPEC §7, §8.6). */
export interface ApplicationRef {
  /** A module specifier (path or `file:` URL), or null for the built-in sample app. */
  readonly module: string | null;
  /** The settings' name of it (a manifest's `application`); absent: the default application. */
  readonly key?: string;
}

/**
 * Where the instance's code runs (SPEC §8.3): `shared` in this process; `worker` in a worker
 * thread of its own; `process` in a child process of its own. The limits apply to the isolated.
 */
export interface IsolationSpec {
  readonly mode: 'shared' | 'worker' | 'process';
  readonly memoryLimitMb: number;
  readonly watchdogMs: number;
}

/**
 * What a boot does with the app's data. `check`: only compares the data version with the code's
 * (the reconciler's upgrade step migrates; a boot never does). `migrate`: the boot migrates (the
 * main app, which has no reconcile of its own).
 */
export type BootData = 'check' | 'migrate';

/**
 * Everything an adapter needs to start one app instance. Plain JSON:
 * `JSON.parse(JSON.stringify(spec))` is the same spec (a test checks it), so it can cross a
 * thread or process boundary as it is.
 */
export interface InstanceSpec {
  readonly name: string;
  readonly displayName?: string;
  readonly isMain: boolean;
  /** `/apps/<name>`, or `''` for the main app. Requests arrive with it stripped. */
  readonly basePath: string;
  readonly domains: readonly string[];
  /** The manifest's free-form `config`. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly database: DatabaseSettings;
  readonly secret: SecretRef;
  readonly application: ApplicationRef;
  /** Absent: shared (the main app always is). */
  readonly isolation?: IsolationSpec;
  readonly data: {
    /** The code's data version (the application's `version`), what the data must be at. */
    readonly version: number;
    readonly boot: BootData;
    /** The manifest's `upgrade` (used by `boot: 'migrate'` only). */
    readonly upgrade: boolean;
  };
  /** Identifies the spec: a different hash is a different instance (a restart). */
  readonly hash: string;
}

/** What an adapter reports about one instance. */
export interface InstanceState {
  readonly status: AppStatus;
  readonly error: InstanceError | null;
  /** Hash of the spec the instance was started from. */
  readonly specHash: string;
  readonly startedAt: Date | null;
  /** When its last start failed (null unless the status says it did). */
  readonly failedAt: Date | null;
  /** While a start is under way: when it gives up (ms since the epoch); null otherwise. */
  readonly deadline: number | null;
  /** Isolated instances only: where it runs, and the memory it last reported (MiB). */
  readonly isolation?: { readonly mode: 'worker' | 'process'; readonly memoryMb?: number };
}

/** The error an instance shows with its status. */
export type InstanceError = ErrorSummary;

/** A status change of an instance. */
export interface InstanceStatusEvent {
  readonly app: string;
  readonly status: AppStatus;
  readonly error: InstanceError | null;
}

/** A start that finished, one way or the other. */
export interface InstanceStartEvent {
  readonly app: string;
  readonly ok: boolean;
  readonly durationMs: number;
}

/** A running isolated instance ended: crashed, exited, or ended by its watchdog (SPEC §8.3). */
export interface InstanceCrashEvent {
  readonly app: string;
  readonly error: InstanceError;
}

export interface AdapterEventMap {
  status: [InstanceStatusEvent];
  start: [InstanceStartEvent];
  crash: [InstanceCrashEvent];
}

/**
 * Runs app instances, one per name. It decides nothing about *whether* an app should run: the
 * reconciler (start and stop steps) and the runtime's lazy-start policy do; it carries out and
 * reports. It never retries a failed start by itself.
 */
export interface AppProcessAdapter {
  readonly kind: ProcessAdapterKind;
  /** Status changes and finished starts of the current instances (never of replaced ones). */
  readonly events: EventEmitter<AdapterEventMap>;
  /**
   * Starts `spec.name` from `spec` and resolves once it takes requests; rejects with the start's
   * error (an AppvisorError: APP_ERROR, APP_START_TIMEOUT, APP_NEEDS_UPGRADE, APP_DATA_NEWER, …).
   * An instance of the same spec that runs or is starting is joined (one start, never two); a
   * stopped or failed one, or one of another spec, is replaced by a fresh start. Aborting
   * `signal` abandons the start: the instance is stopped and the promise rejects.
   */
  start(spec: InstanceSpec, signal?: AbortSignal): Promise<void>;
  /**
   * Stops the instance (closes the app, then its database) and forgets it; resolves when it is
   * stopped. A start under way is abandoned. Idempotent: unknown or stopped names resolve.
   */
  stop(name: string, opts?: { readonly graceMs?: number }): Promise<void>;
  /** Where to send a request for `name` right now: the app if it takes requests, else undefined. Never starts anything. */
  route(name: string): ReadyApp | undefined;
  /**
   * The app once it takes requests: joins a start under way; an instance whose start failed
   * rejects at once with that start's error (fail fast); no instance rejects with APP_ERROR.
   * Never starts anything.
   */
  acquire(name: string): Promise<ReadyApp>;
  /** Resolves when no start of `name` is under way (whatever its outcome). */
  ready(name: string): Promise<void>;
  /** The instance's state, or undefined when there is none (never started, or stopped). */
  status(name: string): InstanceState | undefined;
  /** Resolves when no start of any instance is under way. */
  settled(): Promise<void>;
  /** Stops every instance, the last started first. Idempotent. */
  close(): Promise<void>;
  /**
   * Hands the named instances (all: every one) their secrets as they stand now, without a
   * restart (a rotation). Rejects when the secrets cannot be read; the instances keep theirs.
   */
  refreshSecrets?(names?: readonly string[]): Promise<void>;
}

/** Where an adapter finds the JWT secrets an {@link SecretRef} names (the state store is one). */
export interface SecretSource {
  getSecret(app: string): Promise<string | undefined>;
  /** The current secret and, during a rotation's grace, the previous one (the state store has it). */
  getSecretSet?(app: string): Promise<SecretSet | undefined>;
}
