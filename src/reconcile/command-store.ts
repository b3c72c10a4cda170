/**
 * The state store as a one-off command holds it (`apply`, and without a server to ask: `backup`,
 * `restore`, `clone`, `rotate-secret`, `rekey`): opened with the master key (generated on first
 * use, as `serve` does) and under the leader lease taken as a command, so the command never runs
 * beside a reconcile. A running server, which leads, refuses it at once with LOCK_HELD naming the
 * server; another command is waited for.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { Settings } from '../config/types.js';
import { parseDatabaseUrl } from '../dialects/registry.js';
import type { DatabaseUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import type { MasterKey } from '../secrets/envelope.js';
import { loadMasterKey } from '../secrets/master-key.js';
import { openStateStore } from '../state/store.js';
import type { StateStore } from '../state/types.js';
import { acquireLease, COMMAND_HOLDER_PREFIX, type HeldLease } from './lease.js';
import { DEFAULT_LOCK_WAIT_MS } from './lock.js';

export interface CommandStore {
  readonly mainUrl: DatabaseUrl;
  readonly store: StateStore;
  readonly lease: HeldLease;
  readonly masterKey: MasterKey;
  /** Gives the lease up and closes the store (idempotent). */
  close(): Promise<void>;
}

export interface CommandStoreOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: Logger;
  /** How long to wait for another command's lease. @default DEFAULT_LOCK_WAIT_MS */
  readonly lockWaitMs?: number;
}

export async function openCommandStore(
  settings: Pick<Settings, 'database' | 'dataDir' | 'mainDatabase'>,
  opts: CommandStoreOptions = {},
): Promise<CommandStore> {
  const mainUrl = parseDatabaseUrl(settings.database.url);
  const masterKey = await loadMasterKey({
    ...(opts.env ? { env: opts.env } : {}),
    dataDir: settings.dataDir,
    create: true,
  });
  if (!masterKey) {
    throw new AppvisorError('MASTER_KEY_INVALID', {
      source: settings.dataDir,
      detail: 'there is no master key and none could be generated',
    });
  }
  const store = await openStateStore(mainUrl, {
    ...(opts.log ? { log: opts.log } : {}),
    adopt: settings.mainDatabase?.adopt ?? false,
    masterKey,
  });
  const lease = await acquireLease(store, {
    url: mainUrl,
    holder: `${COMMAND_HOLDER_PREFIX}${os.hostname()}-${process.pid}`,
    waitMs: opts.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    ...(opts.log ? { log: opts.log } : {}),
  }).catch(async (err) => {
    await store.close();
    throw err;
  });
  let closing: Promise<void> | undefined;
  return {
    mainUrl,
    store,
    lease,
    masterKey,
    close() {
      closing ??= (async () => {
        try {
          await lease.release();
        } finally {
          await store.close();
        }
      })();
      return closing;
    },
  };
}
