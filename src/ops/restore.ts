/**
 * `appvisor restore FILE [--as NAME]` (SPEC §8.4): an archive back into its app, or into a new
 * app (a clone). The archive is verified whole before anything changes; every refusal (another
 * application's data, data newer than the code, another dialect) comes before any change; the
 * data is loaded into a temporary place beside the app's and swapped in only once it is
 * complete. A restore that fails or is killed before the swap leaves the app as it was (what it
 * loaded carries the app's marker, and the next reconcile sweeps it like an interrupted create's
 * leftover).
 *
 * A restore into the same app keeps the app's current secret: tokens issued since the backup
 * stay valid, and the archive's sealed secret is not needed (nor its master key). A clone gets a
 * new secret, unless `keepSecret`.
 *
 * A clone is made the way any new app is: its manifest is written to `apps.d/NAME.yaml`, and the
 * normal reconcile of NAME creates its database (with appvisor's marker, journalled), its secret
 * and its record; then the archive's data is loaded and swapped into that fresh database. So a
 * clone's record, inventory and database are exactly what `apply` would have made, and nothing
 * here duplicates the executor.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { AppvisorError } from '../errors.js';
import { defaultDatabaseName } from '../manifests/defaults.js';
import { loadManifests } from '../manifests/load.js';
import type { AppManifest } from '../manifests/types.js';
import type { DatabaseTarget } from '../reconcile/model.js';
import { ownerMarker } from '../reconcile/owner.js';
import { resolveTarget } from '../reconcile/target.js';
import type { Application } from '../runtime/contract.js';
import { open } from '../secrets/envelope.js';
import { type AppRecord, type HistoryEntry, MAIN_APP } from '../state/types.js';
import {
  type ArchivedSecret,
  type ArchiveMeta,
  MANIFEST_MEMBER,
  readArchive,
  SECRET_MEMBER,
} from './archive.js';
import { targetOfRecord } from './backup.js';
import type { OnTransferProgress } from './byte-count.js';
import { applicationOfApp, type OpsContext, placeOf } from './context.js';
import { makeWorkDir } from './work-dir.js';

export interface RestoreOptions {
  /** Restore into a new app of this name (a clone) instead of the archive's own app. */
  readonly as?: string;
  /** With `as`: keep the archived secret instead of generating a new one. */
  readonly keepSecret?: boolean;
  /** Said in the history entry instead of the archive's path (a clone's temporary file). */
  readonly source?: string;
  /** Told of the archive's bytes as they are read and checked (progress output). */
  readonly onProgress?: OnTransferProgress;
}

export interface RestoreResult {
  /** The app restored into. */
  readonly app: string;
  /** The archive's app. */
  readonly from: string;
  /** Whether a new app was made (`as`). */
  readonly created: boolean;
  /** The data version restored. */
  readonly dataVersion: number;
  /** A clone's manifest file, written for the user to commit. */
  readonly manifestFile?: string;
  readonly ms: number;
}

const APP_NAME = /^[a-z][a-z0-9_-]{0,39}$/;

/** Restores archive `file`; see the module comment. */
export async function restore(
  ctx: OpsContext,
  file: string,
  opts: RestoreOptions = {},
): Promise<RestoreResult> {
  const t0 = performance.now();
  const work = await makeWorkDir('restore');
  try {
    const archive = await readArchive(path.resolve(file), work, opts.onProgress);
    const { meta } = archive;
    const name = opts.as ?? meta.app;
    let target: DatabaseTarget;
    let manifest: AppManifest | undefined;
    if (opts.as !== undefined) {
      manifest = await cloneManifest(
        ctx,
        parse(await archive.readText(MANIFEST_MEMBER)) as AppManifest,
        name,
      );
      checkIdentity(applicationOfApp(ctx, manifest), meta, name);
      target = resolveOrThrow(manifest, ctx);
    } else {
      const record = await ctx.store.getRecord(name);
      if (!record) throw new AppvisorError('APP_NOT_FOUND', { app: name });
      checkIdentity(applicationOfApp(ctx, record.spec), meta, name);
      target = targetOfRecord(ctx, record);
    }
    if (target.dialect !== meta.dialect || target.kind !== meta.kind) {
      throw new AppvisorError('UNSUPPORTED_MODE', {
        detail: `the archive holds a ${meta.dialect} ${meta.kind} of ${meta.app}; ${name} is a ${target.dialect} ${target.kind}: an archive is restored on the dialect and kind it was made on`,
      });
    }
    const transfer = ctx.transferFor(target);
    if (transfer.member !== meta.data) {
      throw new AppvisorError('ARCHIVE_INVALID', {
        file,
        detail: `its data member is ${meta.data}, not ${transfer.member}`,
      });
    }
    await transfer.checkTools();
    const secret = JSON.parse(await archive.readText(SECRET_MEMBER)) as ArchivedSecret;
    const kept = opts.as !== undefined && opts.keepSecret ? keptSecret(ctx, secret, meta) : undefined;

    let manifestFile: string | undefined;
    if (manifest) {
      manifestFile = await writeCloneManifest(ctx, manifest, meta);
      try {
        // Before its reconcile, so that the reconcile finds a secret and generates none.
        if (kept !== undefined) await ctx.store.ensureSecret(name, kept, ctx.fence);
        await ctx.reconcile(name);
      } catch (err) {
        // Nothing was made for it: the manifest goes too, and all is as before.
        const made = await ctx.store.getRecord(name).catch(() => undefined);
        if (!made) await fs.rm(manifestFile, { force: true });
        throw err;
      }
    }
    const signal = ctx.signal ? { signal: ctx.signal } : {};
    const owner = ownerMarker(ctx.store.storeId, name);
    const place = placeOf(target);
    const loaded = await transfer.load(place, archive.pathOf(meta.data), owner, signal);
    let swapped = false;
    try {
      await ctx.stopApp?.(name);
      try {
        await transfer.swap(place, loaded, owner, signal);
        swapped = true;
        await recordRestore(ctx, name, meta, opts.source ?? path.resolve(file), t0);
      } finally {
        await ctx.startApp?.(name);
      }
    } catch (err) {
      if (!swapped) {
        await transfer.discard(loaded).catch((discardErr: unknown) => {
          ctx.log.warn({ err: discardErr }, 'could not remove the loaded copy; the next reconcile sweeps it');
        });
      }
      throw err;
    }
    ctx.log.info(
      { app: name, from: meta.app, dataVersion: meta.dataVersion },
      `restored ${name} from ${file}`,
    );
    return {
      app: name,
      from: meta.app,
      created: manifest !== undefined,
      dataVersion: meta.dataVersion,
      ...(manifestFile ? { manifestFile } : {}),
      ms: performance.now() - t0,
    };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** The refusals that need only the archive's meta and the code. */
function checkIdentity(application: Application, meta: ArchiveMeta, name: string): void {
  if (meta.application.name !== application.name) {
    throw new AppvisorError('APP_WRONG_APPLICATION', {
      app: name,
      data: meta.application.name,
      code: application.name,
    });
  }
  if (meta.dataVersion > application.version) {
    throw new AppvisorError('APP_DATA_NEWER', {
      app: name,
      dataVersion: meta.dataVersion,
      codeVersion: application.version,
    });
  }
}

function resolveOrThrow(manifest: AppManifest, ctx: OpsContext): DatabaseTarget {
  const target = resolveTarget(manifest, ctx.main);
  if (target instanceof AppvisorError) throw target;
  return target;
}

/**
 * The source's applied spec for a new app `name`: its database takes the default name for
 * `name` (a schema: `name`), and it gets no domains (they are the source's).
 */
async function cloneManifest(ctx: OpsContext, spec: AppManifest, name: string): Promise<AppManifest> {
  if (!APP_NAME.test(name) || name === MAIN_APP) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `--as ${JSON.stringify(name)}: an app name is 1-40 lower-case letters, digits, '-' or '_', starting with a letter, and not main`,
    });
  }
  if (await ctx.store.getRecord(name)) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: `an app named ${name} exists already; restore into it without --as, or choose another name`,
    });
  }
  const db = spec.database;
  return {
    ...spec,
    name,
    displayName: spec.displayName === spec.name ? name : `${spec.displayName} (${name})`,
    database: {
      ...db,
      ...(db.mode === 'new-schema' ? { schema: name } : { name: defaultDatabaseName(name) }),
      adopt: false,
    },
    domains: [],
  };
}

/** Writes `apps.d/NAME.yaml`, refusing to overwrite anything, and checks it reads back valid. */
async function writeCloneManifest(
  ctx: OpsContext,
  manifest: AppManifest,
  meta: ArchiveMeta,
): Promise<string> {
  const file = path.join(ctx.appsDir, `${manifest.name}.yaml`);
  const shown = path.relative(process.cwd(), file) || file;
  for (const taken of [file, path.join(ctx.appsDir, `${manifest.name}.yml`)]) {
    if (
      await fs.access(taken).then(
        () => true,
        () => false,
      )
    ) {
      throw new AppvisorError('MANIFEST_INVALID', {
        file: path.relative(process.cwd(), taken) || taken,
        detail:
          'exists already; a restore --as never overwrites a manifest (remove it, or choose another name)',
      });
    }
  }
  const before = await loadManifests(ctx.appsDir);
  const other = before.apps.find((a) => a.manifest.name === manifest.name);
  if (other) {
    throw new AppvisorError('MANIFEST_INVALID', {
      file: other.file,
      detail: `declares app ${manifest.name} already`,
    });
  }
  const header = [
    '# yaml-language-server: $schema=../schema/app.schema.json',
    `# A clone of ${meta.app} (backup of ${meta.createdAt}), written by appvisor restore --as.`,
    '',
  ].join('\n');
  await fs.mkdir(ctx.appsDir, { recursive: true });
  await fs.writeFile(file, `${header}${stringify(manifest)}`, { flag: 'wx' });
  const after = await loadManifests(ctx.appsDir);
  if (!after.apps.some((a) => a.manifest.name === manifest.name)) {
    await fs.rm(file, { force: true });
    const errors = after.invalid.flatMap((f) =>
      f.errors.map((e) => `${e.file}:${e.line}:${e.column}: ${e.message}`),
    );
    throw new AppvisorError('MANIFEST_INVALID', {
      file: shown,
      detail: `the clone's manifest did not validate (${errors.join('; ') || 'unknown reason'}); nothing was created`,
    });
  }
  return file;
}

function keptSecret(ctx: OpsContext, secret: ArchivedSecret, meta: ArchiveMeta): string | undefined {
  if (secret.mode !== 'own' || secret.sealed === undefined) return undefined;
  return open(secret.sealed, ctx.masterKey, meta.app);
}

/** The record's data version from the archive, and the history entry, in one fenced write. */
async function recordRestore(
  ctx: OpsContext,
  name: string,
  meta: ArchiveMeta,
  source: string,
  t0: number,
): Promise<void> {
  const record = await ctx.store.getRecord(name);
  const at = new Date().toISOString();
  const next: AppRecord | undefined = record && { ...record, dataVersion: meta.dataVersion, updatedAt: at };
  const entry: HistoryEntry = {
    app: name,
    reconcileId: randomBytes(4).toString('hex'),
    at,
    outcome: 'updated',
    steps: [
      {
        action: 'restore',
        detail: `restored ${meta.app}'s ${meta.kind} (data version ${meta.dataVersion}, backed up ${meta.createdAt}) from ${source}`,
        result: 'updated',
      },
    ],
    durationMs: Math.round(performance.now() - t0),
    ...(ctx.by ? { by: ctx.by } : {}),
  };
  await ctx.store.finishRun(next, entry, ctx.fence);
}
