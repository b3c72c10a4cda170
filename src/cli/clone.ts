import type { Command } from 'commander';
import { clone } from '../ops/clone.js';
import type { RestoreResult } from '../ops/restore.js';
import { adminTransfer, CLIENT_HELP, URL_OPTION_HELP, whenServerAnswers } from './admin-client.js';
import { shownPath, withOps } from './backup.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  println,
  settingsFor,
  withConfigOption,
  withDirOption,
  withJsonOption,
} from './common.js';
import { bytesInTime, transferProgress } from './transfer-progress.js';

interface CloneFlags extends CommonOptions {
  readonly keepSecret?: boolean;
  readonly url?: string;
}

/** `appvisor clone SRC DEST`: a new app with a copy of another's data and a new secret. */
export function registerClone(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('clone <src> <dest>')
    .description("a new app DEST with a copy of SRC's data (online) and a new secret")
    .option('--keep-secret', "keep SRC's secret (SRC's tokens then open DEST too)")
    .option('--url <url>', URL_OPTION_HELP)
    .addHelpText(
      'after',
      `\nDEST's manifest is written to apps.d/<dest>.yaml (by the server, in its apps.d, when one runs: its leader clones; an admin-scope token).\n${CLIENT_HELP}\nExit codes: 0 done, 1 failed.`,
    );
  withDirOption(cmd);
  withConfigOption(cmd);
  withJsonOption(cmd);
  return cmd.action(
    action(ctx, (src: string, dest: string, opts: CloneFlags) => runClone(ctx, src, dest, opts)),
  );
}

async function runClone(ctx: CliContext, src: string, dest: string, opts: CloneFlags): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  // JSON output is for scripts: no live line then.
  const progress = transferProgress(ctx, `cloning ${src} into ${dest}`, { quiet: opts.json === true });
  let result: RestoreResult;
  try {
    result =
      (await whenServerAnswers(settings, ctx.env, opts.url, async (target, token) => {
        progress.say('the server is cloning');
        return (await adminTransfer(target, token, `_supervisor/api/apps/${encodeURIComponent(src)}/clone`, {
          json: { as: dest, keepSecret: opts.keepSecret === true },
        })) as RestoreResult;
      })) ??
      (await withOps(ctx, opts, (ops) =>
        clone(ops, src, dest, {
          ...(opts.keepSecret ? { keepSecret: true } : {}),
          onProgress: progress.onProgress,
        }),
      ));
  } finally {
    progress.clear();
  }
  if (opts.json) {
    println(ctx.stdout, JSON.stringify({ ...result, seconds: result.ms / 1000 }));
    return 0;
  }
  // The archive's bytes counted here (a clone by the server moves them there: only its time).
  const bytes = progress.archiveBytes();
  const figures = bytes > 0 ? `: ${bytesInTime(bytes, result.ms)}` : ` in ${(result.ms / 1000).toFixed(1)} s`;
  println(ctx.stdout, `cloned app ${src} into new app ${dest}${figures}`);
  println(ctx.stdout, `  data version ${result.dataVersion}`);
  if (result.manifestFile) {
    println(
      ctx.stdout,
      `  manifest written to ${shownPath(ctx, result.manifestFile)} (commit it with your manifests)`,
    );
  }
  if (!opts.keepSecret) println(ctx.stdout, `  it has a new secret: tokens of ${src} do not open it`);
  return 0;
}
