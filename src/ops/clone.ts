/** `appvisor clone SRC DEST` (SPEC §8.4): backup and restore --as in one step. */
import { AppvisorError } from '../errors.js';
import type { OpsContext } from './context.js';
import type { RestoreResult } from './restore.js';

export interface CloneOptions {
  /** Keep the source's secret (tokens of the source then open the clone too). @default false */
  readonly keepSecret?: boolean;
}

/** A new app `dest` with a copy of `src`'s data and (unless `keepSecret`) a new secret. */
export async function clone(
  ctx: OpsContext,
  src: string,
  dest: string,
  opts: CloneOptions = {},
): Promise<RestoreResult> {
  void ctx;
  void opts;
  throw new AppvisorError('UNSUPPORTED_MODE', { detail: `clone of ${src} into ${dest} is not finished yet` });
}
