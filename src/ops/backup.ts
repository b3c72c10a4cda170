/**
 * `appvisor backup NAME` (SPEC §8.4): one app's data, online and consistent while it takes
 * writes, in one `.tar.gz` archive with its manifest and its sealed secret.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'yaml';
import { AppvisorError } from '../errors.js';
import type { DatabaseTarget } from '../reconcile/model.js';
import { resolveTarget } from '../reconcile/target.js';
import { readApplication, readDataVersion } from '../runtime/migrations.js';
import { seal } from '../secrets/envelope.js';
import type { AppRecord } from '../state/types.js';
import {
  ARCHIVE_FORMAT_VERSION,
  type ArchivedSecret,
  type ArchiveMeta,
  MANIFEST_MEMBER,
  META_MEMBER,
  SECRET_MEMBER,
  writeArchive,
} from './archive.js';
import { byteCounter, type OnTransferProgress } from './byte-count.js';
import { applicationOfApp, type OpsContext, placeOf } from './context.js';
import type { DataPlace, DataTransfer } from './transfer.js';
import { makeWorkDir, partialArchiveOf, sweepStalePartials } from './work-dir.js';

/** What a backup needs of the context: it reads the store, it never writes it. */
export type BackupContext = Pick<
  OpsContext,
  | 'store'
  | 'providers'
  | 'main'
  | 'application'
  | 'masterKey'
  | 'backupsDir'
  | 'transferFor'
  | 'log'
  | 'signal'
> &
  // An operator's backup (with who asked) goes into the app's history; a drop's own is in the drop step's.
  Partial<Pick<OpsContext, 'fence' | 'by'>>;

export interface BackupResult {
  /** Absolute path of the archive written. */
  readonly file: string;
  readonly bytes: number;
  /** The archive's members, in order. */
  readonly members: readonly string[];
  readonly meta: ArchiveMeta;
  readonly ms: number;
}

export interface BackupOptions {
  /** Told of the bytes as the data is dumped and as the archive is written (progress output). */
  readonly onProgress?: OnTransferProgress;
}

/**
 * Backs up app `name` into `out` (default `<backupsDir>/<name>-<UTC yyyymmddThhmmssZ>.tar.gz`;
 * an existing `out` is replaced, a default name already taken gets `-2`, `-3`, …). Written to a
 * temporary file beside it and renamed at the end: a failed backup leaves nothing.
 */
export async function backup(
  ctx: BackupContext,
  name: string,
  out?: string,
  /** Where the history says it went, when not `out` (a download over the admin API). */
  shownAs?: string,
  opts: BackupOptions = {},
): Promise<BackupResult> {
  const t0 = performance.now();
  const record = await ctx.store.getRecord(name);
  if (!record) throw new AppvisorError('APP_NOT_FOUND', { app: name });
  const target = targetOfRecord(ctx, record);
  const transfer = ctx.transferFor(target);
  await transfer.checkTools();
  const place = placeOf(target);
  const createdAt = new Date();
  const file = path.resolve(out ?? path.join(ctx.backupsDir, defaultBackupName(name, createdAt)));
  await fs.mkdir(path.dirname(file), { recursive: true });
  await sweepStalePartials(path.dirname(file));
  const partial = partialArchiveOf(file);
  const work = await makeWorkDir('backup');
  try {
    const owner = await readOwnerInfo(ctx, target);
    const application = applicationOfApp(ctx, record.spec);
    const dataFile = path.join(work, transfer.member);
    await dumpToFile(transfer, place, dataFile, ctx.signal, opts.onProgress);
    const secret = await archivedSecret(ctx, record);
    const meta = await writeArchive(
      partial,
      {
        formatVersion: ARCHIVE_FORMAT_VERSION,
        app: name,
        dialect: target.dialect,
        kind: target.kind,
        data: transfer.member,
        dataVersion: owner.dataVersion ?? record.dataVersion ?? 0,
        application: {
          name: owner.application ?? record.application ?? application.name,
          version: application.version,
        },
        createdAt: createdAt.toISOString(),
      },
      [
        { name: MANIFEST_MEMBER, text: stringify(record.spec) },
        { name: transfer.member, file: dataFile },
        { name: SECRET_MEMBER, text: `${JSON.stringify(secret)}\n` },
      ],
      opts.onProgress,
    );
    ctx.signal?.throwIfAborted();
    const final = out === undefined ? await freeName(file) : file;
    await fs.rename(partial, final);
    const { size } = await fs.stat(final);
    ctx.log.info({ app: name, file: final, bytes: size, by: ctx.by }, `backed up ${name} into ${final}`);
    if (ctx.fence && ctx.by) {
      await ctx.store.finishRun(
        undefined,
        {
          app: name,
          reconcileId: randomBytes(4).toString('hex'),
          at: new Date().toISOString(),
          outcome: 'unchanged',
          steps: [
            {
              action: 'backup',
              detail: `backed up into ${shownAs ?? final} (${size} bytes)`,
              result: 'done',
            },
          ],
          durationMs: Math.round(performance.now() - t0),
          by: ctx.by,
        },
        ctx.fence,
      );
    }
    return {
      file: final,
      bytes: size,
      members: [META_MEMBER, ...Object.keys(meta.members)],
      meta,
      ms: performance.now() - t0,
    };
  } finally {
    await fs.rm(partial, { force: true });
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** `<name>-<UTC yyyymmddThhmmssZ>.tar.gz`. */
export function defaultBackupName(name: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replaceAll('-', '')
    .replaceAll(':', '');
  return `${name}-${stamp}.tar.gz`;
}

/** Where the app's data is, from the spec last applied. */
export function targetOfRecord(ctx: Pick<OpsContext, 'main'>, record: AppRecord): DatabaseTarget {
  const target = resolveTarget(record.spec, ctx.main);
  if (target instanceof AppvisorError) throw target;
  return target;
}

async function readOwnerInfo(
  ctx: BackupContext,
  target: DatabaseTarget,
): Promise<{ dataVersion: number | undefined; application: string | undefined }> {
  const provider = ctx.providers.forTarget(target);
  return provider.withConnection(
    target.database,
    target.kind === 'schema' ? { schema: target.schema! } : {},
    async (client) => ({
      dataVersion: await readDataVersion(client),
      application: await readApplication(client),
    }),
  );
}

/** Dumps into `file`, counting the bytes on their way; a failed dump removes it. */
async function dumpToFile(
  transfer: DataTransfer,
  place: DataPlace,
  file: string,
  signal: AbortSignal | undefined,
  onProgress: OnTransferProgress | undefined,
): Promise<void> {
  const counter = byteCounter('dump', onProgress);
  const written = pipeline(counter, createWriteStream(file, { mode: 0o600 }));
  try {
    await transfer.dump(place, counter, signal ? { signal } : {});
    counter.end();
    await written;
  } catch (err) {
    counter.destroy();
    await written.catch(() => undefined);
    await fs.rm(file, { force: true });
    throw err;
  }
}

async function archivedSecret(ctx: BackupContext, record: AppRecord): Promise<ArchivedSecret> {
  if (record.spec.jwt.secret === 'shared') return { mode: 'shared' };
  const secret = await ctx.store.getSecret(record.name);
  if (secret === undefined) return { mode: 'shared' };
  return { mode: 'own', sealed: seal(secret, ctx.masterKey, record.name) };
}

/** `file`, or `file` with `-2`, `-3`, … before `.tar.gz` when it is taken. */
async function freeName(file: string): Promise<string> {
  const base = file.endsWith('.tar.gz') ? file.slice(0, -'.tar.gz'.length) : file;
  const ext = file.endsWith('.tar.gz') ? '.tar.gz' : '';
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? file : `${base}-${n}${ext}`;
    try {
      await fs.access(candidate);
    } catch {
      return candidate;
    }
  }
}
