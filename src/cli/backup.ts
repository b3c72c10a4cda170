import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { Settings } from '../config/types.js';
import { createLogger } from '../log.js';
import { META_MEMBER, readArchiveMeta } from '../ops/archive.js';
import { type BackupResult, backup, defaultBackupName } from '../ops/backup.js';
import type { OnTransferProgress } from '../ops/byte-count.js';
import { backupsDirOf, type OpsContext, openOpsContext } from '../ops/context.js';
import {
  adminTransfer,
  CLIENT_HELP,
  type ServerTarget,
  URL_OPTION_HELP,
  whenServerAnswers,
} from './admin-client.js';
import {
  action,
  type CliContext,
  type CliIO,
  type CommonOptions,
  println,
  settingsFor,
  withConfigOption,
  withDirOption,
  withJsonOption,
} from './common.js';
import { bytesInTime, transferProgress } from './transfer-progress.js';

interface BackupFlags extends CommonOptions {
  readonly output?: string;
  readonly url?: string;
}

/** `appvisor backup NAME [-o FILE]`: an online, consistent backup of one app. */
export function registerBackup(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('backup <name>')
    .description("back up one app's data, manifest and sealed secret into one .tar.gz archive")
    .option('-o, --output <file>', 'archive to write (default: backups/<name>-<UTC yyyymmddThhmmssZ>.tar.gz)')
    .option('--url <url>', URL_OPTION_HELP)
    .addHelpText(
      'after',
      `\nWith a server running, the server makes the backup (its leader; an operate-scope token) and this command saves the download; without one it runs on the state store under the reconcile lock.\n${CLIENT_HELP}\nExit codes: 0 done, 1 failed (nothing partial is left).`,
    );
  withDirOption(cmd);
  withConfigOption(cmd);
  withJsonOption(cmd);
  return cmd.action(action(ctx, (name: string, opts: BackupFlags) => runBackup(ctx, name, opts)));
}

async function runBackup(ctx: CliContext, name: string, opts: BackupFlags): Promise<number> {
  const out = opts.output === undefined ? undefined : path.resolve(ctx.cwd, opts.output);
  const settings = await settingsFor(ctx, opts);
  // JSON output is for scripts: no live line then.
  const progress = transferProgress(ctx, `backing up ${name}`, { quiet: opts.json === true });
  let result: Awaited<ReturnType<typeof downloadBackup>>;
  try {
    result =
      (await whenServerAnswers(settings, ctx.env, opts.url, (target, token) => {
        progress.say('the server is making the backup');
        return downloadBackup(
          target,
          token,
          name,
          out ?? path.join(backupsDirOf(settings), defaultBackupName(name, new Date())),
          progress.onProgress,
        );
      })) ??
      (await withOps(ctx, opts, (ops) =>
        backup(ops, name, out, undefined, { onProgress: progress.onProgress }),
      ));
  } finally {
    progress.clear();
  }
  if (opts.json) {
    println(ctx.stdout, JSON.stringify({ ...result, meta: undefined, seconds: result.ms / 1000 }));
    return 0;
  }
  // The bytes counted as the archive was written (or downloaded): what the live line showed.
  println(
    ctx.stdout,
    `backed up app ${name}: ${bytesInTime(progress.archiveBytes() || result.bytes, result.ms)} → ${shownPath(ctx, result.file)}`,
  );
  println(ctx.stdout, `  members ${result.members.join(', ')}; data version ${result.meta.dataVersion}`);
  return 0;
}

/** Runs `work` on a context over the state store (under the lease), closed afterwards. */
export async function withOps<T>(
  ctx: CliIO,
  opts: CommonOptions,
  work: (ops: OpsContext, settings: Settings) => Promise<T>,
): Promise<T> {
  const settings = await settingsFor(ctx, opts);
  const log = createLogger({ level: 'warn', pretty: true });
  const ops = await openOpsContext(settings, { log, env: ctx.env });
  try {
    return await work(ops, settings);
  } finally {
    await ops.close();
  }
}

export function shownPath(ctx: CliIO, file: string): string {
  const relative = path.relative(ctx.cwd, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

/** The server's backup of `name`, saved into `file`: what a local backup would say of it. */
async function downloadBackup(
  target: ServerTarget,
  token: string,
  name: string,
  file: string,
  onProgress: OnTransferProgress,
): Promise<Omit<BackupResult, 'members'> & { readonly members: readonly string[] }> {
  const t0 = performance.now();
  await fs.mkdir(path.dirname(file), { recursive: true });
  await adminTransfer(target, token, `_supervisor/api/apps/${encodeURIComponent(name)}/backup`, {
    download: file,
    onProgress,
  });
  const meta = await readArchiveMeta(file);
  const { size } = await fs.stat(file);
  return {
    file,
    bytes: size,
    members: [META_MEMBER, ...Object.keys(meta.members)],
    meta,
    ms: performance.now() - t0,
  };
}
