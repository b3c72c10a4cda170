/**
 * `appvisor clone SRC DEST` (SPEC §8.4): backup and restore --as in one step, through a temporary
 * archive that is removed afterwards. PostgreSQL's `CREATE DATABASE … TEMPLATE` is not used: it
 * needs the source without any other connection, i.e. stopped, and a clone must not stop it.
 */
import path from 'node:path';
import { backup } from './backup.js';
import type { OnTransferProgress } from './byte-count.js';
import type { OpsContext } from './context.js';
import { type RestoreResult, restore } from './restore.js';
import { withWorkDir } from './work-dir.js';

export interface CloneOptions {
  /** Keep the source's secret (tokens of the source then open the clone too). @default false */
  readonly keepSecret?: boolean;
  /** Told of the bytes as they pass: the backup's dump and archive, then the restore's read. */
  readonly onProgress?: OnTransferProgress;
}

/** A new app `dest` with a copy of `src`'s data and (unless `keepSecret`) a new secret. */
export async function clone(
  ctx: OpsContext,
  src: string,
  dest: string,
  opts: CloneOptions = {},
): Promise<RestoreResult> {
  const t0 = performance.now();
  return withWorkDir('clone', async (dir) => {
    const progress = opts.onProgress ? { onProgress: opts.onProgress } : {};
    const archive = await backup(
      ctx,
      src,
      path.join(dir, `${src}.tar.gz`),
      `a copy for the clone ${dest}`,
      progress,
    );
    const result = await restore(ctx, archive.file, {
      as: dest,
      ...(opts.keepSecret ? { keepSecret: true } : {}),
      source: `a clone of ${src}`,
      ...progress,
    });
    return { ...result, ms: performance.now() - t0 };
  });
}
