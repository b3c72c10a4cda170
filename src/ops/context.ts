/**
 * What backup, restore and clone need (SPEC §8.4), gathered once: the state store and the term
 * that fences its writes, the providers, the application, the master key, the folders, and the
 * runtime hooks. The server builds one from what it holds (its store, its lease's fence, its
 * runtime); without a server, {@link openOpsContext} builds one on the state store under the
 * leader lease, as `apply` does, so an operation is serialized with any reconcile.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeMainDatabase } from '../config/main-database.js';
import type { Settings } from '../config/types.js';
import { parseDatabaseUrl } from '../dialects/registry.js';
import { checkApplications, knownApplications } from '../manifests/applications-check.js';
import { loadManifests } from '../manifests/load.js';
import type { AppManifest } from '../manifests/types.js';
import { ProviderSet } from '../providers/set.js';
import { openCommandStore } from '../reconcile/command-store.js';
import { toDesired } from '../reconcile/desired.js';
import { createDataClaimer, createMigrator } from '../reconcile/migrate.js';
import type { DatabaseTarget, PlanOptions } from '../reconcile/model.js';
import { reconcileApp } from '../reconcile/reconciler.js';
import { type ApplicationSet, loadApplications } from '../runtime/applications.js';
import type { Application } from '../runtime/contract.js';
import type { MasterKey } from '../secrets/envelope.js';
import type { Fence, StateStore } from '../state/types.js';
import { createDropBackup } from './drop-backup.js';
import type { DataPlace, DataTransfer } from './transfer.js';
import { transferForTarget } from './transfers.js';

/** Everything an operation reads and writes through; see the module comment. */
export interface OpsContext {
  readonly store: StateStore;
  /** The lease term every state-store write of the operation carries. */
  readonly fence: Fence;
  readonly providers: ProviderSet;
  /** The main database, as the planner describes it (targets are resolved against it). */
  readonly main: PlanOptions['main'];
  /** The default application (settings `app`): what an app whose manifest names none runs. */
  readonly application: Application;
  /**
   * Every application (SPEC §8.6): an app's own (its manifest's `application`) decides what may
   * be restored into it and is recorded in its backups. Absent: every app runs `application`.
   */
  readonly applications?: ApplicationSet;
  /** Seals the secret in an archive (and opens it for `--keep-secret`). */
  readonly masterKey: MasterKey;
  /** Absolute apps folder: a clone's manifest is written there. */
  readonly appsDir: string;
  /** Absolute default folder of backups. */
  readonly backupsDir: string;
  /** The data transfer that reaches `target`'s server. */
  transferFor(target: DatabaseTarget): DataTransfer;
  /**
   * Runs the normal reconcile of one app (apply's, or the server's queue): a clone writes its
   * manifest and lets this create its database, secret and record exactly as for any new app.
   */
  reconcile(name: string): Promise<void>;
  /** Stops the app on every replica before its data is swapped (absent: nothing runs it). */
  stopApp?(name: string): Promise<void>;
  /** Gives the app back to the runtime after the swap, as it was before {@link stopApp}. */
  startApp?(name: string): Promise<void>;
  readonly log: Logger;
  /** Who asked (`token <name> via <client>`, or the CLI user), for the history entry. */
  readonly by?: string;
  /** Aborted when the operation must stop (the lease was lost, shutdown). */
  readonly signal?: AbortSignal;
}

/** Where an app's data lives, as a transfer sees it. */
export function placeOf(target: DatabaseTarget): DataPlace {
  return target.kind === 'schema'
    ? { kind: 'schema', database: target.database, schema: target.schema! }
    : { kind: 'database', database: target.database };
}

/** A context for a one-off command, with what must be given back when it is done. */
export interface OpenedOpsContext extends OpsContext {
  /** Releases the lease and closes the store and the providers (idempotent). */
  close(): Promise<void>;
}

export interface OpenOpsOptions {
  readonly log: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Who runs the command, for the history. @default `cli <user>@<host>` */
  readonly by?: string;
  /** How long to wait for another one-off command's lease. @default 30000 */
  readonly lockWaitMs?: number;
}

/**
 * Opens the state store and takes the leader lease, as `apply` does: a running server refuses
 * at once with LOCK_HELD; another one-off command is waited for. The master key is generated
 * when there is none yet, as `serve` and `apply` do.
 */
export async function openOpsContext(settings: Settings, opts: OpenOpsOptions): Promise<OpenedOpsContext> {
  const mainUrl = parseDatabaseUrl(settings.database.url);
  const main = describeMainDatabase(mainUrl, settings.dataDir);
  const applications = await loadApplications(settings);
  const application = applications.default.application;
  const held = await openCommandStore(settings, {
    log: opts.log,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.lockWaitMs !== undefined ? { lockWaitMs: opts.lockWaitMs } : {}),
  });
  const { store, lease, masterKey } = held;
  const providers = new ProviderSet(mainUrl, { dataDir: settings.dataDir, log: opts.log });
  const planOptions: PlanOptions = {
    main,
    codeVersion: application.version,
    application: application.name,
    applications: applications.codes(),
    deletionGraceMs: settings.deletionGraceMs,
  };
  const migrate = createMigrator({ applications, providers, main });
  const claimData = createDataClaimer({ applications, providers, main });
  let closing: Promise<void> | undefined;
  return {
    store,
    fence: lease.fence,
    providers,
    main,
    application,
    applications,
    masterKey,
    appsDir: settings.appsDir,
    backupsDir: backupsDirOf(settings),
    transferFor: transferForTarget(settings),
    async reconcile(name) {
      // Read afresh: a clone has just written its manifest.
      const desired = toDesired(
        checkApplications(
          await loadManifests(settings.appsDir, opts.env ? { env: opts.env } : {}),
          knownApplications(settings),
        ),
      );
      const reconcileId = randomBytes(4).toString('hex');
      await reconcileApp(
        name,
        {
          store,
          fence: lease.fence,
          providers,
          planOptions,
          desired: () => desired,
          migrate,
          claimData,
          backupBeforeDrop: createDropBackup({
            settings,
            store,
            providers,
            main,
            application,
            applications,
            log: opts.log,
            masterKey,
          }),
        },
        { reconcileId, log: opts.log.child({ app: name, reconcileId }), signal: lease.signal },
      );
    },
    log: opts.log,
    by: opts.by ?? cliUser(),
    signal: lease.signal,
    close() {
      closing ??= (async () => {
        await providers.close();
        await held.close();
      })();
      return closing;
    },
  };
}

/** The application app `manifest` runs: its own (SPEC §8.6), else the default one. */
export function applicationOfApp(
  ctx: Pick<OpsContext, 'application' | 'applications'>,
  manifest: Pick<AppManifest, 'application' | 'name'>,
): Application {
  return ctx.applications ? ctx.applications.of(manifest).application : ctx.application;
}

/** The backups folder of the settings (hand-built settings may leave it out: `backups` beside apps.d). */
export function backupsDirOf(settings: Pick<Settings, 'appsDir' | 'backupsDir'>): string {
  return settings.backupsDir ?? path.join(path.dirname(settings.appsDir), 'backups');
}

/** `cli <user>@<host>`: who ran a one-off command, for the history. */
function cliUser(): string {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    user = process.env.USER ?? 'unknown';
  }
  return `cli ${user}@${os.hostname()}`;
}
