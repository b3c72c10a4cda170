import path from 'node:path';
import type { Command } from 'commander';
import { AppvisorError } from '../errors.js';
import { restore } from '../ops/restore.js';
import { seconds, shownPath, withOps } from './backup.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  println,
  withConfigOption,
  withDirOption,
  withJsonOption,
} from './common.js';

interface RestoreFlags extends CommonOptions {
  readonly as?: string;
  readonly keepSecret?: boolean;
  readonly yes?: boolean;
}

/** `appvisor restore FILE [--as NAME] [--keep-secret] [--yes]`. */
export function registerRestore(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('restore <file>')
    .description('restore a backup archive into its app, or with --as into a new app (a clone)')
    .option(
      '--as <name>',
      'restore into a new app of this name: its manifest is written to apps.d/<name>.yaml',
    )
    .option('--keep-secret', "with --as: keep the archive's secret (the source's tokens then open the clone)")
    .option('--yes', "replace the app's data (needed without --as)")
    .addHelpText(
      'after',
      "\nThe archive is checked whole first; the app's data is replaced only once the restore succeeded.\nA restore into the same app keeps its current secret.\nExit codes: 0 done, 1 failed (the app as before).",
    );
  withDirOption(cmd);
  withConfigOption(cmd);
  withJsonOption(cmd);
  return cmd.action(action(ctx, (file: string, opts: RestoreFlags) => runRestore(ctx, file, opts)));
}

async function runRestore(ctx: CliContext, file: string, opts: RestoreFlags): Promise<number> {
  if (opts.as === undefined && !opts.yes) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail:
        "a restore replaces the app's current data: pass --yes to go ahead, or --as NAME to restore into a new app",
    });
  }
  if (opts.keepSecret && opts.as === undefined) {
    throw new AppvisorError('CONFIG_INVALID', {
      detail: '--keep-secret goes with --as (a restore into the same app always keeps its secret)',
    });
  }
  const archive = path.resolve(ctx.cwd, file);
  const result = await withOps(ctx, opts, (ops) =>
    restore(ops, archive, {
      ...(opts.as !== undefined ? { as: opts.as } : {}),
      ...(opts.keepSecret ? { keepSecret: true } : {}),
    }),
  );
  if (opts.json) {
    println(ctx.stdout, JSON.stringify({ ...result, seconds: result.ms / 1000 }));
    return 0;
  }
  const what = result.created ? `new app ${result.app} (a clone of ${result.from})` : result.app;
  println(
    ctx.stdout,
    `Restored ${what} from ${shownPath(ctx, archive)}: data version ${result.dataVersion}, ${seconds(result.ms)}`,
  );
  if (result.manifestFile) {
    println(
      ctx.stdout,
      `  manifest written to ${shownPath(ctx, result.manifestFile)} (commit it with your manifests)`,
    );
  }
  if (result.created && !opts.keepSecret)
    println(ctx.stdout, '  it has a new secret: tokens of the source do not open it');
  return 0;
}
