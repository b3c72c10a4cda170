/**
 * `appvisor restore FILE [--as NAME]` (SPEC §8.4): an archive back into its app, or into a new
 * app (a clone). The archive is verified whole before anything changes; the data is loaded into
 * a temporary place and swapped in only once it is complete.
 */
import { AppvisorError } from '../errors.js';
import type { OpsContext } from './context.js';

export interface RestoreOptions {
  /** Restore into a new app of this name (a clone) instead of the archive's own app. */
  readonly as?: string;
  /** With `as`: keep the archived secret instead of generating a new one. */
  readonly keepSecret?: boolean;
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

/** Restores archive `file`; see the module comment. */
export async function restore(
  ctx: OpsContext,
  file: string,
  opts: RestoreOptions = {},
): Promise<RestoreResult> {
  void ctx;
  void opts;
  throw new AppvisorError('UNSUPPORTED_MODE', { detail: `restore of ${file} is not finished yet` });
}
