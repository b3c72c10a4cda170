/**
 * This replica's heartbeat: its row in `appvisor_replicas`, written every `intervalMs` and soon
 * after each status change (coalesced: at most one write per `coalesceMs`), so another replica
 * sees a start or a stop here within about half a second. One timer, one write at a time; a
 * failed write is logged once per outage and the next one simply tries again. On stop the row
 * is deleted, so a clean shutdown does not linger as a dead replica.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AdminEventMap } from '../admin/types.js';
import { messageOf } from '../errors.js';
import type { Application } from '../runtime/contract.js';
import type { Runtime } from '../runtime/runtime.js';
import type { ReplicaAppStatus, ReplicaHeartbeat, StateStore } from '../state/types.js';
import { appvisorVersion, type ReplicaIdentity } from './replica-identity.js';

/** @default intervals */
export const HEARTBEAT_DEFAULTS = {
  intervalMs: 2_000,
  coalesceMs: 250,
  /** Rows not seen for an hour are deleted; until then they show as dead replicas. */
  pruneAfterMs: 3_600_000,
  /** How often this replica prunes (every replica does; the delete is idempotent). */
  pruneEveryMs: 60_000,
} as const;

export interface HeartbeatOptions {
  readonly store: Pick<StateStore, 'writeReplica' | 'touchReplica' | 'deleteReplica' | 'pruneReplicas'>;
  readonly runtime: Pick<Runtime, 'names' | 'status' | 'startedAt'>;
  /** Its `status` events bring the next write forward. */
  readonly events: EventEmitter<AdminEventMap>;
  readonly identity: ReplicaIdentity;
  /** The application this replica runs (its version, as text, is the row's `version`). */
  readonly application: Pick<Application, 'name' | 'version'>;
  /** Every application this replica runs, the default one first (a rolling upgrade compares each). */
  readonly applications?: readonly Pick<Application, 'name' | 'version'>[];
  /** Settings `database.connectionBudget`. */
  readonly connectionBudget: number;
  /** Apps whose manifest in this replica's apps.d differs from what is applied. @default none */
  readonly drift?: () => readonly string[];
  readonly log: Logger;
  /** Whether this replica drains before it stops (written as `leaving`). @default never */
  readonly leaving?: () => boolean;
  /** Whether it stays out of rotation for an older replica (written as `waiting`). @default never */
  readonly waiting?: () => boolean;
  /** Where its admin API answers (written as `adminUrl`; undefined until it listens). */
  readonly adminUrl?: () => string | undefined;
  /** @default 2000 */
  readonly intervalMs?: number;
  /** The least time between two writes: a burst of status changes makes one write. @default 250 */
  readonly coalesceMs?: number;
  /** @default 3600000 */
  readonly pruneAfterMs?: number;
}

export interface Heartbeat {
  /** How often it writes when nothing changes: a row older than three of these is a dead replica's. */
  readonly intervalMs: number;
  /** Stops writing, waits for a write under way, and deletes this replica's row (a failure is logged). */
  stop(): Promise<void>;
  /** Writes the row now (it says something new: this replica is leaving, or no longer waiting). */
  beatNow(): Promise<void>;
}

/**
 * Starts the heartbeat; resolves after the first write (a failed one is logged, not thrown: the
 * store just opened, and a replica must not fail to start over its heartbeat).
 */
export async function startHeartbeat(options: HeartbeatOptions): Promise<Heartbeat> {
  const loop = new HeartbeatLoop(options);
  await loop.start();
  return loop;
}

class HeartbeatLoop implements Heartbeat {
  readonly intervalMs: number;
  readonly #o: HeartbeatOptions;
  readonly #coalesceMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires (ms since the epoch); Infinity without one. */
  #dueAt = Number.POSITIVE_INFINITY;
  #writing: Promise<void> | undefined;
  /** A status changed while a write was under way: write again once the coalescing gap allows. */
  #dirty = false;
  #lastWriteAt = Number.NEGATIVE_INFINITY;
  #lastPruneAt = Number.NEGATIVE_INFINITY;
  #failing = false;
  #stopped = false;
  /** The row last written whole, as JSON: an unchanged beat only moves `last_seen_at`. */
  #lastWritten: string | undefined;
  readonly #onStatus = (): void => this.#soon();

  constructor(options: HeartbeatOptions) {
    this.#o = options;
    this.intervalMs = options.intervalMs ?? HEARTBEAT_DEFAULTS.intervalMs;
    this.#coalesceMs = options.coalesceMs ?? HEARTBEAT_DEFAULTS.coalesceMs;
  }

  async start(): Promise<void> {
    this.#o.events.on('status', this.#onStatus);
    await this.#write();
  }

  async beatNow(): Promise<void> {
    if (this.#stopped) return;
    await this.#writing;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dueAt = Number.POSITIVE_INFINITY;
    await this.#write();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#o.events.off('status', this.#onStatus);
    clearTimeout(this.#timer);
    await this.#writing;
    try {
      await this.#o.store.deleteReplica(this.#o.identity.id);
    } catch (err) {
      this.#o.log.warn(
        { err: messageOf(err), replica: this.#o.identity.id },
        'could not delete this replica’s heartbeat; it shows as dead until pruned',
      );
    }
  }

  /** A status changed: write once the coalescing gap since the last write has passed. */
  #soon(): void {
    if (this.#stopped) return;
    if (this.#writing) {
      this.#dirty = true;
      return;
    }
    this.#schedule(Math.max(Date.now(), this.#lastWriteAt + this.#coalesceMs));
  }

  /** Sets the one timer to fire at `at`, unless it fires sooner already. */
  #schedule(at: number): void {
    if (this.#stopped || (this.#timer !== undefined && this.#dueAt <= at)) return;
    clearTimeout(this.#timer);
    this.#dueAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#dueAt = Number.POSITIVE_INFINITY;
        void this.#write();
      },
      Math.max(0, at - Date.now()),
    );
    // The HTTP server keeps a serving process alive; the heartbeat alone must not.
    this.#timer.unref();
  }

  async #write(): Promise<void> {
    if (this.#stopped) return;
    this.#lastWriteAt = Date.now();
    this.#dirty = false;
    this.#writing = this.#writeOnce();
    await this.#writing;
    this.#writing = undefined;
    if (this.#dirty) this.#schedule(Math.max(Date.now(), this.#lastWriteAt + this.#coalesceMs));
    else this.#schedule(this.#lastWriteAt + this.intervalMs);
  }

  async #writeOnce(): Promise<void> {
    const { store, log, identity } = this.#o;
    try {
      const beat = this.#beat();
      const text = JSON.stringify(beat);
      // Most beats say nothing new: a 10,000-app row is not rewritten every 2 s for that.
      if (text !== this.#lastWritten || !(await store.touchReplica(identity.id))) {
        await store.writeReplica(beat);
        this.#lastWritten = text;
      }
      if (this.#failing) {
        this.#failing = false;
        log.info({ replica: identity.id }, 'replica heartbeat written again');
      }
    } catch (err) {
      this.#lastWritten = undefined;
      // Once per outage: a store down for an hour must not log 1,800 lines.
      if (!this.#failing) {
        this.#failing = true;
        log.warn(
          { err: messageOf(err), replica: identity.id },
          'cannot write this replica’s heartbeat; retrying on every beat',
        );
      }
      return;
    }
    if (Date.now() - this.#lastPruneAt >= HEARTBEAT_DEFAULTS.pruneEveryMs) {
      this.#lastPruneAt = Date.now();
      try {
        await store.pruneReplicas(this.#o.pruneAfterMs ?? HEARTBEAT_DEFAULTS.pruneAfterMs);
      } catch (err) {
        log.debug({ err: messageOf(err) }, 'could not prune dead replicas; the next prune will');
      }
    }
  }

  /** The row as it stands now: only the apps that are not stopped here. */
  #beat(): ReplicaHeartbeat {
    const { runtime, identity } = this.#o;
    const application = { name: this.#o.application.name, version: String(this.#o.application.version) };
    const apps: Record<string, ReplicaAppStatus> = {};
    for (const name of runtime.names()) {
      const status = runtime.status(name);
      if (status === undefined || status === 'stopped') continue;
      const startedAt = runtime.startedAt(name);
      apps[name] = startedAt ? { status, startedAt: startedAt.toISOString() } : { status };
    }
    return {
      id: identity.id,
      host: identity.host,
      pid: identity.pid,
      version: application.version,
      startedAt: identity.startedAt,
      info: {
        appvisorVersion: appvisorVersion(),
        application,
        ...(this.#o.applications
          ? {
              applications: this.#o.applications.map((a) => ({ name: a.name, version: String(a.version) })),
            }
          : {}),
        connectionBudget: this.#o.connectionBudget,
        drift: [...(this.#o.drift?.() ?? [])],
        apps,
        ...(this.#o.leaving?.() ? { leaving: true as const } : {}),
        ...(this.#o.waiting?.() ? { waiting: true as const } : {}),
        ...(this.#o.adminUrl?.() ? { adminUrl: this.#o.adminUrl()! } : {}),
      },
    };
  }
}
