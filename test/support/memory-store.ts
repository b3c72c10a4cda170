/**
 * An in-memory StateStore with the real store's fenced semantics (src/state/store.ts): every
 * record write is a compare-and-set on the record's version and on the lock term, and a refused
 * write fails with the same codes (STATE_CONFLICT, LOCK_LOST) and changes nothing. Values are
 * kept as JSON, as the real store keeps them, so optional fields read back absent and a caller
 * never shares an object with the store. memory-store.test.ts runs the same behaviours against
 * this store and a real SQLite one.
 */
import { AppvisorError } from '../../src/errors.js';
import { kidOf } from '../../src/runtime/jwt.js';
import type { MasterKey } from '../../src/secrets/envelope.js';
import { LAST_USED_RESOLUTION_MS } from '../../src/state/tokens.js';
import {
  type AdminTokenRecord,
  type AppRecord,
  type Fence,
  type HistoryEntry,
  type LeaseView,
  MAIN_APP,
  type OperatorIntent,
  type ReplicaHeartbeat,
  type ReplicaList,
  type ReplicaRecord,
  type SecretRotation,
  type SecretSet,
  type StateStore,
} from '../../src/state/types.js';

/** The data behind one store; several handles (processes) may share it. */
export interface MemoryState {
  term: number;
  readonly records: Map<string, AppRecord>;
  readonly secrets: Map<string, string>;
  /** The previous secret of a rotation, while it still verifies (no sealing here: plain values). */
  readonly previousSecrets: Map<string, { secret: string; until: string }>;
  /** Oldest first, every app. */
  readonly history: HistoryEntry[];
  /** The leader lease's holder and when it runs out (this process's clock stands in for the server's). */
  lease?: { holder: string; expiresAt: number };
  /** Admin tokens by name. */
  readonly tokens: Map<string, AdminTokenRecord>;
  /** Heartbeats by replica id (no lease here: nobody is leader). */
  readonly replicas: Map<string, ReplicaRecord>;
}

export interface MemoryStoreOptions {
  /** History entries kept per app. @default 50 */
  readonly historyLimit?: number;
  /** @default 'memory-store' */
  readonly storeId?: string;
  /** Another handle's data, for a second process on the same store. */
  readonly state?: MemoryState;
}

function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export class MemoryStateStore implements StateStore {
  readonly storeId: string;
  readonly target = 'memory';
  readonly state: MemoryState;
  readonly #historyLimit: number;
  #closed = false;

  constructor(opts: MemoryStoreOptions = {}) {
    this.storeId = opts.storeId ?? 'memory-store';
    this.#historyLimit = opts.historyLimit ?? 50;
    this.state = opts.state ?? {
      term: 0,
      records: new Map(),
      secrets: new Map(),
      previousSecrets: new Map(),
      history: [],
      tokens: new Map(),
      replicas: new Map(),
    };
  }

  /** Another handle on the same data (as a second process opening the same store). */
  connect(): MemoryStateStore {
    return new MemoryStateStore({
      storeId: this.storeId,
      historyLimit: this.#historyLimit,
      state: this.state,
    });
  }

  #open(operation: string): void {
    if (this.#closed) {
      throw new AppvisorError('STATE_STORE_FAILED', {
        target: this.target,
        detail: `${operation}: the store is closed`,
      });
    }
  }

  #atTerm(fence: Fence): void {
    if (fence.term !== this.state.term) {
      throw new AppvisorError('LOCK_LOST', {
        target: this.target,
        detail: `its term ${fence.term} is over; the store is at term ${this.state.term}`,
      });
    }
  }

  #atVersion(name: string, expected: number): void {
    const stored = this.state.records.get(name);
    if ((stored?.version ?? 0) !== expected) {
      throw new AppvisorError('STATE_CONFLICT', {
        app: name,
        expected,
        actual: stored ? stored.version! : 'deleted',
      });
    }
  }

  async listRecords(): Promise<AppRecord[]> {
    this.#open('list records');
    return [...this.state.records.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(copy);
  }

  async getRecord(name: string): Promise<AppRecord | undefined> {
    this.#open(`read record ${name}`);
    const stored = this.state.records.get(name);
    return stored ? copy(stored) : undefined;
  }

  async beginTerm(): Promise<Fence> {
    this.#open('begin a reconcile lock term');
    this.state.term += 1;
    return { term: this.state.term };
  }

  async currentTerm(): Promise<number> {
    this.#open('read the reconcile lock term');
    return this.state.term;
  }

  async takeLease(holder: string, ttlMs: number, opts?: { force?: boolean }): Promise<Fence | undefined> {
    this.#open('take the leader lease');
    const { lease } = this.state;
    if (!opts?.force && lease && lease.expiresAt > Date.now()) return undefined;
    this.state.term += 1;
    this.state.lease = { holder, expiresAt: Date.now() + ttlMs };
    return { term: this.state.term };
  }

  async renewLease(holder: string, fence: Fence, ttlMs: number): Promise<boolean> {
    this.#open('renew the leader lease');
    const { lease } = this.state;
    if (!lease || lease.holder !== holder || fence.term !== this.state.term || lease.expiresAt <= Date.now())
      return false;
    lease.expiresAt = Date.now() + ttlMs;
    return true;
  }

  async releaseLease(holder: string, fence: Fence): Promise<void> {
    this.#open('release the leader lease');
    if (this.state.lease?.holder === holder && fence.term === this.state.term) this.state.lease = undefined;
  }

  async readLease(): Promise<LeaseView | undefined> {
    this.#open('read the leader lease');
    const { lease, term } = this.state;
    const left = lease ? lease.expiresAt - Date.now() : 0;
    return lease && left > 0 ? { holder: lease.holder, term, expiresInMs: left } : { term };
  }

  async recordVersions(): Promise<Map<string, number>> {
    this.#open('list record versions');
    return new Map([...this.state.records].map(([name, r]) => [name, r.version ?? 0]));
  }

  /** One process: the handles share the data, so there is nothing to tell. */
  async announce(): Promise<void> {}

  async putRecord(record: AppRecord, fence: Fence): Promise<AppRecord> {
    this.#open(`write record ${record.name}`);
    const expected = record.version ?? 0;
    // The term first: a deposed writer hears LOCK_LOST whatever the record did meanwhile.
    this.#atTerm(fence);
    this.#atVersion(record.name, expected);
    // A record write never touches the operator's intent (setIntent is its only writer).
    const { intent: _ignored, ...rest } = record;
    const kept = this.state.records.get(record.name)?.intent;
    this.state.records.set(
      record.name,
      copy({ ...rest, ...(kept ? { intent: kept } : {}), version: expected + 1 }),
    );
    return { ...record, version: expected + 1 };
  }

  async deleteRecord(name: string, version: number, fence: Fence): Promise<void> {
    this.#open(`delete record ${name}`);
    this.#atTerm(fence);
    this.#atVersion(name, version);
    this.state.records.delete(name);
  }

  async setIntent(
    name: string,
    intent: OperatorIntent,
    accept?: (record: AppRecord) => void,
  ): Promise<AppRecord | undefined> {
    this.#open(`record the operator's ${intent.action} of ${name}`);
    const stored = this.state.records.get(name);
    if (!stored) return undefined;
    const record = copy(stored);
    accept?.(record);
    const version = (record.version ?? 0) + 1;
    this.state.records.set(name, copy({ ...stored, intent, version }));
    return { ...record, intent, version };
  }

  async getSecret(name: string): Promise<string | undefined> {
    this.#open(`read secret ${name}`);
    return this.state.secrets.get(name);
  }

  ensureMainSecret(secret: string): Promise<string> {
    return this.#ensureSecret(MAIN_APP, secret, undefined);
  }

  ensureSecret(name: string, secret: string, fence: Fence): Promise<string> {
    return this.#ensureSecret(name, secret, fence);
  }

  async getSecretSet(name: string): Promise<SecretSet | undefined> {
    this.#open(`read secret ${name}`);
    const secret = this.state.secrets.get(name);
    if (secret === undefined) return undefined;
    const current = { kid: kidOf(secret), secret };
    // As the real store: a previous secret whose grace is over reads as absent.
    const previous = this.state.previousSecrets.get(name);
    if (!previous || !(Date.parse(previous.until) > Date.now())) return { current };
    return { current, previous: { kid: kidOf(previous.secret), ...previous } };
  }

  async rotateSecret(name: string, rotation: SecretRotation, fence: Fence): Promise<SecretSet> {
    this.#open(`rotate secret ${name}`);
    const before = this.state.secrets.get(name);
    if (before === undefined) throw new AppvisorError('APP_NOT_FOUND', { app: name });
    if (rotation.secret === before) {
      throw new AppvisorError('CONFIG_INVALID', { detail: `the new secret of ${name} is the current one` });
    }
    this.#atTerm(fence);
    const until = rotation.previousUntil;
    this.state.secrets.set(name, rotation.secret);
    this.state.previousSecrets.set(name, { secret: before, until });
    // As the real store: the versions of the records whose tokens change are raised.
    for (const [key, record] of this.state.records) {
      if (name === MAIN_APP || key === name)
        this.state.records.set(key, { ...record, version: (record.version ?? 0) + 1 });
    }
    this.#appendHistory(rotation.entry);
    return (await this.getSecretSet(name))!;
  }

  /** Nothing is sealed here: only the fence and the count are as the real store's. */
  async rekey(_next: MasterKey, fence: Fence): Promise<number> {
    this.#open('re-seal the secrets under a new master key');
    this.#atTerm(fence);
    return this.state.secrets.size;
  }

  async #ensureSecret(name: string, secret: string, fence: Fence | undefined): Promise<string> {
    this.#open(`store secret ${name}`);
    // As the real store: a stored secret is answered whatever the term; only an insert is fenced.
    const stored = this.state.secrets.get(name);
    if (stored !== undefined) return stored;
    if (fence) this.#atTerm(fence);
    this.state.secrets.set(name, secret);
    return secret;
  }

  #appendHistory(entry: HistoryEntry): void {
    const history = this.state.history;
    history.push(copy({ ...entry, durationMs: Math.round(entry.durationMs) }));
    const own = history.filter((h) => h.app === entry.app);
    for (const old of own.slice(0, Math.max(0, own.length - this.#historyLimit))) {
      history.splice(history.indexOf(old), 1);
    }
  }

  async finishRun(
    record: AppRecord | undefined,
    entry: HistoryEntry,
    fence: Fence,
  ): Promise<AppRecord | undefined> {
    this.#open(`record the reconcile of ${entry.app}`);
    // Both checks before either write: as one transaction, both land or neither does.
    this.#atTerm(fence);
    if (record) this.#atVersion(record.name, record.version ?? 0);
    const written = record ? await this.putRecord(record, fence) : undefined;
    this.#appendHistory(entry);
    return written;
  }

  async listHistory(name: string, limit = this.#historyLimit): Promise<HistoryEntry[]> {
    this.#open(`read history of ${name}`);
    return this.state.history
      .filter((h) => h.app === name)
      .reverse()
      .slice(0, limit)
      .map(copy);
  }

  async ensureAdminToken(token: AdminTokenRecord): Promise<AdminTokenRecord> {
    this.#open(`store admin token ${token.name}`);
    if (!this.state.tokens.has(token.name)) this.state.tokens.set(token.name, copy(token));
    return copy(this.state.tokens.get(token.name)!);
  }

  async listAdminTokens(): Promise<AdminTokenRecord[]> {
    this.#open('list admin tokens');
    return [...this.state.tokens.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(copy);
  }

  async findAdminToken(hash: string): Promise<AdminTokenRecord | undefined> {
    this.#open('look up an admin token');
    const found = [...this.state.tokens.values()].find((t) => t.hash === hash);
    if (!found) return undefined;
    const now = Date.now();
    if (found.revokedAt !== undefined) return copy(found);
    if (found.lastUsedAt === undefined || Date.parse(found.lastUsedAt) < now - LAST_USED_RESOLUTION_MS) {
      this.state.tokens.set(found.name, { ...found, lastUsedAt: new Date(now).toISOString() });
    }
    return copy(this.state.tokens.get(found.name)!);
  }

  async deleteAdminToken(name: string): Promise<boolean> {
    this.#open(`delete admin token ${name}`);
    return this.state.tokens.delete(name);
  }

  async revokeAdminToken(name: string): Promise<AdminTokenRecord | undefined> {
    this.#open(`revoke admin token ${name}`);
    const found = this.state.tokens.get(name);
    if (!found) return undefined;
    if (found.revokedAt === undefined) {
      this.state.tokens.set(name, { ...found, revokedAt: new Date().toISOString() });
    }
    return copy(this.state.tokens.get(name)!);
  }

  async writeReplica(beat: ReplicaHeartbeat): Promise<void> {
    this.#open(`write the heartbeat of replica ${beat.id}`);
    this.state.replicas.set(beat.id, copy({ ...beat, lastSeenAt: Date.now(), leader: false }));
  }

  async touchReplica(id: string): Promise<boolean> {
    this.#open(`touch the heartbeat of replica ${id}`);
    const row = this.state.replicas.get(id);
    if (row === undefined) return false;
    this.state.replicas.set(id, { ...row, lastSeenAt: Date.now() });
    return true;
  }

  async listReplicas(): Promise<ReplicaList> {
    this.#open('list replicas');
    const replicas = [...this.state.replicas.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map(copy);
    return { nowMs: Date.now(), replicas };
  }

  async deleteReplica(id: string): Promise<void> {
    this.#open(`delete the heartbeat of replica ${id}`);
    this.state.replicas.delete(id);
  }

  async pruneReplicas(olderThanMs: number): Promise<number> {
    this.#open('prune dead replicas');
    let pruned = 0;
    for (const [id, r] of this.state.replicas) {
      if (r.lastSeenAt < Date.now() - olderThanMs && this.state.replicas.delete(id)) pruned++;
    }
    return pruned;
  }

  async serverMaxConnections(): Promise<number | undefined> {
    return undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/** Everything a reconcile may write, to compare before and after (nothing written: equal). */
export async function snapshot(store: StateStore, apps: readonly string[] = []) {
  return {
    term: await store.currentTerm(),
    records: await store.listRecords(),
    secrets: await Promise.all(apps.map((a) => store.getSecret(a))),
    history: await Promise.all(apps.map((a) => store.listHistory(a))),
  };
}
