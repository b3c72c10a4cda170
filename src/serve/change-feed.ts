/**
 * How a replica learns that another one changed a record (an operator's stop, a reconcile of the
 * leader): PostgreSQL NOTIFY for speed, and a poll of every record's version for correctness. The
 * listener is only ever a shortcut: a dropped connection, a pooler in transaction mode, or a
 * server without LISTEN (MySQL/MariaDB) leaves the poll, which finds every change within `pollMs`.
 */
import type { Logger } from 'pino';
import { dialectNamed } from '../dialects/registry.js';
import type { ChangeListener } from '../dialects/types.js';
import type { DatabaseUrl } from '../dialects/url.js';
import { messageOf } from '../errors.js';
import { CHANGES_CHANNEL, decodeChanges } from '../state/changes.js';
import type { StateStore } from '../state/types.js';

export interface ChangeFeedOptions {
  readonly url: DatabaseUrl;
  readonly store: Pick<StateStore, 'recordVersions'>;
  /** This replica's id: its own announcements are not news to it. */
  readonly origin: string;
  /** Told the names whose records changed (or went away) since they were last seen. */
  readonly onChange: (names: readonly string[]) => void;
  readonly log: Logger;
  /** @default 2000 (SPEC §8.1: within 5 s without the listener) */
  readonly pollMs?: number;
  /** Whether to LISTEN where the dialect can. @default true */
  readonly listen?: boolean;
}

export const DEFAULT_POLL_MS = 2_000;

export class ChangeFeed {
  readonly #opts: ChangeFeedOptions;
  readonly #pollMs: number;
  /** Each record's version as last seen (polled, or written by this replica). */
  #versions = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #listener: ChangeListener | undefined;
  #polling: Promise<void> | undefined;
  #pollFailing = false;
  #closed = false;

  constructor(opts: ChangeFeedOptions) {
    this.#opts = opts;
    this.#pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  }

  /** Reads the versions as they stand (the first reconcile covers every app), then listens and polls. */
  async start(): Promise<void> {
    this.#versions = await this.#opts.store.recordVersions();
    const listen = dialectNamed(this.#opts.url.dialect).listen;
    if (listen && this.#opts.listen !== false) {
      this.#listener = listen(this.#opts.url, CHANGES_CHANNEL, {
        onPayload: (payload) => this.#announced(payload),
        onState: (listening, err) => {
          if (listening) {
            this.#opts.log.debug('listening for changes of other replicas');
            // What was announced while it was away is found now, not at the next poll.
            void this.poll();
          } else {
            this.#opts.log.warn(
              { err: messageOf(err) },
              'change listener lost; reconnecting (changes still arrive by the poll)',
            );
          }
        },
      });
    }
    this.#schedule();
  }

  /** This replica wrote `name`'s record at `version`: the poll need not tell it. */
  note(name: string, version: number | undefined): void {
    if (version === undefined) this.#versions.delete(name);
    else this.#versions.set(name, Math.max(version, this.#versions.get(name) ?? 0));
  }

  /** Reads every record's version and reports the changed names (one poll at a time). */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #poll(): Promise<void> {
    let now: Map<string, number>;
    try {
      now = await this.#opts.store.recordVersions();
    } catch (err) {
      if (!this.#pollFailing)
        this.#opts.log.warn({ err: messageOf(err) }, 'cannot poll the state store for changes');
      this.#pollFailing = true;
      return;
    }
    if (this.#pollFailing) this.#opts.log.info('polling the state store for changes again');
    this.#pollFailing = false;
    const changed: string[] = [];
    for (const [name, version] of now) if (this.#versions.get(name) !== version) changed.push(name);
    for (const name of this.#versions.keys()) if (!now.has(name)) changed.push(name);
    this.#versions = now;
    if (changed.length > 0 && !this.#closed) this.#opts.onChange(changed);
  }

  #announced(payload: string): void {
    const change = decodeChanges(payload);
    if (!change || change.origin === this.#opts.origin || this.#closed) return;
    this.#opts.onChange(change.names);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.poll().finally(() => this.#schedule());
    }, this.#pollMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#listener?.close();
    await this.#polling;
  }
}
