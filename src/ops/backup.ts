/**
 * `appvisor backup NAME` (SPEC §8.4): one app's data, online and consistent while it takes
 * writes, in one `.tar.gz` archive with its manifest and its sealed secret.
 */
import { AppvisorError } from '../errors.js';
import type { OpsContext } from './context.js';

export interface BackupResult {
  /** Absolute path of the archive written. */
  readonly file: string;
  readonly bytes: number;
  /** The archive's members, in order. */
  readonly members: readonly string[];
  readonly ms: number;
}

/**
 * Backs up app `name` into `out` (default `<backupsDir>/<name>-<UTC yyyymmddThhmmssZ>.tar.gz`).
 * Written to a temporary file beside it and renamed at the end: a failed backup leaves nothing.
 */
export async function backup(ctx: OpsContext, name: string, out?: string): Promise<BackupResult> {
  void ctx;
  void out;
  throw new AppvisorError('UNSUPPORTED_MODE', { detail: `backup of ${name} is not finished yet` });
}
