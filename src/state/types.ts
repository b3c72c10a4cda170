import type { ErrorSummary } from '../errors.js';
import type { AppManifest } from '../manifests/types.js';
import type { Dialect } from '../providers/provider.js';
import type { MasterKey } from '../secrets/envelope.js';

/** Runtime and record statuses (SPEC §6). */
/** The name the main app goes by: its secret's key in the store, its instance's name. */
export const MAIN_APP = 'main';

export const APP_STATUSES = [
  'stopped',
  'provisioning',
  'starting',
  'upgrading',
  'running',
  'stopping',
  'needs-upgrade',
  'error',
  'disabled',
  'orphaned',
] as const;
export type AppStatus = (typeof APP_STATUSES)[number];

/**
 * Something appvisor created (or adopted) for an app. `state: 'creating'` is written
 * *before* the CREATE statement runs, so a process killed between the CREATE and the
 * record update still knows, on the next run, that the object it finds is its own.
 */
export interface InventoryItem {
  readonly kind: 'database' | 'schema';
  readonly dialect: Dialect;
  /** Redacted server description (no password), to tell servers apart. */
  readonly server: string;
  readonly name: string;
  /** For schemas: the database that holds it. */
  readonly database?: string;
  readonly state: 'creating' | 'created' | 'adopted';
  /** Ownership marker left on the object (e.g. `appvisor:<storeId>:<app>`). */
  readonly owner: string;
  readonly at: string;
}

/** The error of an app's last failed reconcile, and when it happened. */
export interface AppRecordError extends ErrorSummary {
  readonly at: string;
}

/**
 * An operator's last start or stop (SPEC §6): intent, not a runtime flag. A stop holds across
 * restarts, for every start mode, until a start. Written only through `setIntent`, never by a
 * reconcile's record write, so a reconcile that read the record earlier cannot undo it.
 */
export interface OperatorIntent {
  readonly action: 'start' | 'stop';
  /** Who asked (the token's name and the client), for the 503 answer, the log and the history. */
  readonly by: string;
  readonly at: string;
}

/**
 * What fences a reconcile's writes: the term of the leader lease it holds (a number the store
 * raises each time a process takes the lease). A write under an older term is refused, so a
 * process that lost its lease, however late its write arrives, changes nothing.
 */
export interface Fence {
  readonly term: number;
}

/** The leader lease as it stands: its holder while it runs (absent: free or run out) and its term. */
export interface LeaseView {
  readonly holder?: string;
  readonly term: number;
  /** How long the holder's lease still runs (ms), when there is a holder. */
  readonly expiresInMs?: number;
}

/** One app as the state store knows it. */
export interface AppRecord {
  readonly name: string;
  /**
   * The record's version in the store, raised by every write (absent: not stored yet). A record
   * write is a compare-and-set on it: it lands only on the version it was read at.
   */
  readonly version?: number;
  /** The manifest file it was last applied from (relative to the apps dir). */
  readonly file: string;
  /** The spec last applied (defaults applied) and its hash. */
  readonly spec: AppManifest;
  readonly specHash: string;
  readonly inventory: readonly InventoryItem[];
  /** Whether this app has its own secret in the store (the value lives in the secrets table). */
  readonly hasSecret: boolean;
  readonly status: AppStatus;
  readonly lastError?: AppRecordError;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly lastReconciledAt?: string;
  /** The app's data version after the last migration appvisor ran (a cache; the app's database is authoritative). */
  readonly dataVersion?: number;
  /**
   * The application that owns the app's data (its `name`; the app's database holds the same
   * marker). Absent on records written before appvisor recorded it: the first application that
   * runs on such data claims it.
   */
  readonly application?: string;
  /** While orphaned with deletionPolicy: drop: when the scheduled drop is due (ISO time). */
  readonly dropAt?: string;
  /** The operator's last start/stop; see {@link OperatorIntent}. */
  readonly intent?: OperatorIntent;
}

export type ReconcileOutcome = 'unchanged' | 'created' | 'updated' | 'deleted' | 'failed' | 'refused';

export interface HistoryEntry {
  readonly app: string;
  readonly reconcileId: string;
  readonly at: string;
  readonly outcome: ReconcileOutcome;
  readonly steps: readonly { readonly action: string; readonly detail: string; readonly result: string }[];
  readonly error?: ErrorSummary;
  readonly durationMs: number;
  /**
   * The admin token whose request caused this entry (an operator's start, stop, backup, restore
   * or rotation; SPEC §8.7), by name; absent for the reconciler's own work.
   */
  readonly by?: string;
}

/** One JWT secret and its key id (the `kid` in the header of the tokens it signs). */
export interface SecretKey {
  readonly kid: string;
  readonly secret: string;
}

/**
 * An app's JWT secrets (SPEC §8.4): the current one signs and verifies; after a rotation the
 * previous one still verifies until `until` (ISO time), then it is gone (read as absent).
 */
export interface SecretSet {
  readonly current: SecretKey;
  readonly previous?: SecretKey & { readonly until: string };
}

/** A rotation of an app's secret (see StateStore.rotateSecret). */
export interface SecretRotation {
  /** The new secret (it signs from now on). */
  readonly secret: string;
  /** Until when (ISO time) the secret it replaces still verifies; now or earlier: not at all. */
  readonly previousUntil: string;
  /** Written to the app's history in the same transaction (naming who rotated it). */
  readonly entry: HistoryEntry;
}

/** What an admin token may do (SPEC §8.7): read the API, also start and stop apps, or everything. */
export const TOKEN_SCOPES = ['read', 'operate', 'admin'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** The name of the admin token a first `serve` generates (scope `admin`). */
export const DEFAULT_TOKEN = 'default';

/** An admin token as the store keeps it: its hash, never the token itself. */
export interface AdminTokenRecord {
  readonly name: string;
  /** SHA-256 of the token, lower-case hex (see state/tokens.ts `tokenHash`). */
  readonly hash: string;
  readonly scope: TokenScope;
  readonly createdAt: string;
  /** When a request last used it, to the minute (absent: never). */
  readonly lastUsedAt?: string;
  /**
   * When it was revoked (absent: it is valid). A revoked token is kept as a tombstone: it opens
   * nothing, and its name is not given to another token.
   */
  readonly revokedAt?: string;
}

/** One app's runtime status on one replica, as its heartbeat tells it (apps absent are `stopped`). */
export interface ReplicaAppStatus {
  readonly status: AppStatus;
  /** ISO time its instance started, while it has one. */
  readonly startedAt?: string;
}

/** What a replica's heartbeat says beyond who it is (the `info` column). */
export interface ReplicaInfo {
  /** appvisor's own package version. */
  readonly appvisorVersion: string;
  /** The application it runs (its `version` is also the row's `version` column). */
  readonly application: { readonly name: string; readonly version: string };
  /**
   * Every application it runs (SPEC §8.6), the default one first; absent in heartbeats of older
   * appvisors, which run the default application only.
   */
  readonly applications?: readonly { readonly name: string; readonly version: string }[];
  /** Settings `database.connectionBudget`: the most connections its app pools open to one server. */
  readonly connectionBudget: number;
  /** Apps whose manifest in its own apps.d differs from what is applied (it does not act on them). */
  readonly drift: readonly string[];
  /** Set while it drains before it stops (SIGTERM with settings `shutdownDrain`): it is leaving. */
  readonly leaving?: true;
  /**
   * Set while it runs newer code than a live replica and stays out of rotation for it (readyz
   * `waiting`, a rolling upgrade): that older replica, when it drains, waits until this is gone.
   */
  readonly waiting?: true;
  /**
   * Where its admin API answers (`APPVISOR_ADVERTISE_URL`, else the address it listens on), so a
   * replica asked for the leader's work (a backup, a restore) passes the request on to it.
   */
  readonly adminUrl?: string;
  /** The apps that are not `stopped` on it, by name: 10,000 mostly idle apps stay a small row. */
  readonly apps: Readonly<Record<string, ReplicaAppStatus>>;
}

/** One replica's heartbeat as it writes it. */
export interface ReplicaHeartbeat {
  /** `<hostname>-<pid>-<4 hex>`, unique per process. */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** The application version it runs. */
  readonly version: string;
  /** ISO time the replica started. */
  readonly startedAt: string;
  readonly info: ReplicaInfo;
}

/** A replica's row as read back, with what only the store can tell. */
export interface ReplicaRecord extends ReplicaHeartbeat {
  /** Its last heartbeat, in ms of the database server's clock. */
  readonly lastSeenAt: number;
  /** Whether it holds the unexpired leader lease now. */
  readonly leader: boolean;
}

/** Every replica's row, with the database server's clock when they were read (to age them by). */
export interface ReplicaList {
  readonly nowMs: number;
  readonly replicas: readonly ReplicaRecord[];
}

/** The persistent state store in the main database. */
export interface StateStore {
  /** A random id for this store, written once; part of ownership markers. */
  readonly storeId: string;
  /** A redacted description of where the store lives. */
  readonly target: string;

  listRecords(): Promise<AppRecord[]>;
  getRecord(name: string): Promise<AppRecord | undefined>;

  /**
   * Opens a new term without changing the lease's holder and returns it (tests, and a process
   * holding SQLite's file lock). Every earlier term's writes are refused from now on.
   */
  beginTerm(): Promise<Fence>;
  /** The term the store is at (0 before any lock was taken). */
  currentTerm(): Promise<number>;

  /**
   * Takes the leader lease for `holder` for `ttlMs` (the server's clock) if it is free or its
   * holder's time is up, opening a new term; undefined while another holds it. `force`: whatever
   * it stands at (a process holding the store's exclusive file lock).
   */
  takeLease(holder: string, ttlMs: number, opts?: { readonly force?: boolean }): Promise<Fence | undefined>;
  /** Extends the lease held by `holder` at `fence`; false when it is no longer theirs or ran out. */
  renewLease(holder: string, fence: Fence, ttlMs: number): Promise<boolean>;
  /** Gives the lease up at once, if `holder` still holds it at `fence`. */
  releaseLease(holder: string, fence: Fence): Promise<void>;
  /** The lease as it stands now. */
  readLease(): Promise<LeaseView | undefined>;
  /**
   * Every record's name and version: what a replica polls to find the records another replica
   * changed (cheap, unlike reading every record).
   */
  recordVersions(): Promise<Map<string, number>>;
  /**
   * Tells the other replicas that these apps' records changed (PostgreSQL NOTIFY; a no-op where
   * there is no such thing: the poll of record versions finds the change). Never rejects.
   */
  announce(names: readonly string[]): Promise<void>;

  /**
   * Writes `record` if the stored one is still at `record.version` (absent: none is stored) and
   * the store is still at `fence.term`; resolves with the record at its new version.
   * @throws AppvisorError STATE_CONFLICT (the record changed since it was read) or LOCK_LOST
   */
  putRecord(record: AppRecord, fence: Fence): Promise<AppRecord>;
  /** Deletes the record at `version` under `fence` (the same compare-and-set as putRecord). */
  deleteRecord(name: string, version: number, fence: Fence): Promise<void>;
  /**
   * Records an operator's start/stop on the app's record (the only writer of `intent`), as a
   * compare-and-set that raises the record's version, so a reconcile that read the record before
   * cannot write over it; `accept` checks the record as it stands (throw to refuse). Returns the
   * record written, or undefined when the app has none.
   */
  setIntent(
    name: string,
    intent: OperatorIntent,
    accept?: (record: AppRecord) => void,
  ): Promise<AppRecord | undefined>;

  /**
   * The id of the master key the store seals secrets with (SPEC §8.5); undefined when it was
   * opened without one (then every secret read or write fails with MASTER_KEY_INVALID).
   */
  readonly masterKeyId?: string;
  /**
   * Returns the current secret for `name` ({@link MAIN_APP} for the main app), or undefined.
   * @throws AppvisorError MASTER_KEY_INVALID when it was sealed with another key
   */
  getSecret(name: string): Promise<string | undefined>;
  /** The current secret and, during a rotation's grace, the previous one (an expired one is absent). */
  getSecretSet(name: string): Promise<SecretSet | undefined>;
  /**
   * Replaces `name`'s secret: the current one becomes the previous (verifying for the grace;
   * a previous one still in its grace is dropped), the new one signs. Raises the version of the
   * records whose tokens change (the app's; for {@link MAIN_APP} every record), so other replicas
   * learn of it through the change feed, and appends `rotation.entry` to the app's history: all in
   * one fenced transaction. Resolves with the new set.
   * @throws AppvisorError APP_NOT_FOUND (no secret of that name) or LOCK_LOST
   */
  rotateSecret(name: string, rotation: SecretRotation, fence: Fence): Promise<SecretSet>;
  /**
   * Re-seals every secret under `next` in one fenced transaction (expired previous secrets are
   * dropped); from then on this store seals and opens with `next`. Resolves with how many rows.
   * @throws AppvisorError MASTER_KEY_INVALID (a secret this store's key does not open) or LOCK_LOST
   */
  rekey(next: MasterKey, fence: Fence): Promise<number>;
  /**
   * Stores `secret` for `name` only if none exists; returns the secret that is stored (the
   * existing one wins, so a secret is never regenerated). Fenced: a reconcile's write.
   * @throws AppvisorError LOCK_LOST
   */
  ensureSecret(name: string, secret: string, fence: Fence): Promise<string>;
  /**
   * `ensureSecret` for the main app's secret at start-up, the one write outside a reconcile's
   * term: an insert that never replaces, so a deposed process can do no harm with it.
   */
  ensureMainSecret(secret: string): Promise<string>;

  /**
   * The last writes of a reconcile in one transaction: `record` as putRecord writes it (when
   * given), and `entry` appended to the app's history (its oldest entries beyond the store's
   * limit dropped); both land or neither does. Resolves with the record at its new version
   * (undefined without one).
   * @throws AppvisorError STATE_CONFLICT or LOCK_LOST (nothing written)
   */
  finishRun(record: AppRecord | undefined, entry: HistoryEntry, fence: Fence): Promise<AppRecord | undefined>;
  /** Newest first. */
  listHistory(name: string, limit?: number): Promise<HistoryEntry[]>;

  /**
   * Stores `token` unless a token of that name exists; returns the one stored (the existing one
   * wins, so of two replicas generating the default token at once exactly one is kept). Not
   * fenced by a term: any replica may add a token, the insert decides.
   */
  ensureAdminToken(token: AdminTokenRecord): Promise<AdminTokenRecord>;
  /** Every admin token, by name, the revoked ones too (with `revokedAt`). */
  listAdminTokens(): Promise<AdminTokenRecord[]>;
  /**
   * The token with this hash, or undefined; notes the use in `lastUsedAt` when the stored one is
   * older than a minute (so a busy token is not written on every call).
   */
  findAdminToken(hash: string): Promise<AdminTokenRecord | undefined>;
  /** Removes the token; false when there was none of that name. */
  deleteAdminToken(name: string): Promise<boolean>;
  /**
   * Marks the token revoked (a tombstone: kept, opening nothing, its name not reused); resolves
   * with it as stored now (an already revoked one keeps its first `revokedAt`), or undefined when
   * there is none of that name. Not fenced, as the other token writes.
   */
  revokeAdminToken(name: string): Promise<AdminTokenRecord | undefined>;
  /**
   * Writes this replica's heartbeat (its row, last seen now by the server's clock). Not fenced:
   * each replica writes only its own row.
   */
  writeReplica(beat: ReplicaHeartbeat): Promise<void>;
  /**
   * Marks the replica's row seen now without rewriting it (a heartbeat with nothing new: 10,000
   * running apps make a row of ~700 KB); resolves false when the row is gone, to be written whole.
   */
  touchReplica(id: string): Promise<boolean>;
  /** Every replica's row, sorted by id, each with whether it holds the leader lease now. */
  listReplicas(): Promise<ReplicaList>;
  /** Removes a replica's row (its clean shutdown). */
  deleteReplica(id: string): Promise<void>;
  /** Removes the rows not seen for `olderThanMs` (dead replicas); resolves with how many. */
  pruneReplicas(olderThanMs: number): Promise<number>;
  /** The database server's `max_connections`; undefined on SQLite (no server). */
  serverMaxConnections(): Promise<number | undefined>;

  close(): Promise<void>;
}

/**
 * A read-only view of a store that may not exist yet (for `plan`, which must not even
 * create tables). It holds no master key: its `getSecret` answers the stored text, sealed
 * (what `plan` needs is only whether a secret exists); it never opens nor prints one.
 */
export type StateReader = Pick<
  StateStore,
  'listRecords' | 'getRecord' | 'getSecret' | 'listHistory' | 'close'
> & {
  readonly storeId: string | undefined;
  readonly target: string;
  /** The names that have a secret (`state export` says which, never what). */
  listSecretNames(): Promise<string[]>;
};
