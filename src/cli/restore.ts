import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { AppvisorError } from '../errors.js';
import { readArchiveMeta } from '../ops/archive.js';
import { type RestoreResult, restore } from '../ops/restore.js';
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

interface RestoreFlags extends CommonOptions {
  readonly as?: string;
  readonly keepSecret?: boolean;
  readonly yes?: boolean;
  readonly url?: string;
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
    .option('--url <url>', URL_OPTION_HELP)
    .addHelpText(
      'after',
      `\nThe archive is checked whole first; the app's data is replaced only once the restore succeeded.\nA restore into the same app keeps its current secret.\nWith a server running, the archive is sent to it (its leader restores, stopping the app on every replica around the swap; an admin-scope token); without one it runs on the state store under the reconcile lock.\n${CLIENT_HELP}\nExit codes: 0 done, 1 failed (the app as before).`,
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
  const settings = await settingsFor(ctx, opts);
  const size = await fs.stat(archive).then(
    (st) => st.size,
    () => undefined,
  );
  const progress = transferProgress(ctx, `restoring ${opts.as ?? path.basename(archive)}`, {
    quiet: opts.json === true,
    ...(size !== undefined ? { total: size } : {}),
  });
  let result: RestoreResult;
  try {
    result =
      (await whenServerAnswers(settings, ctx.env, opts.url, async (target, token) => {
        // Into the archive's own app, or (--as) a new one: the server tells them apart by the name.
        const into = opts.as ?? (await readArchiveMeta(archive)).app;
        const query = opts.keepSecret ? '?keepSecret=1' : '';
        return (await adminTransfer(
          target,
          token,
          `_supervisor/api/apps/${encodeURIComponent(into)}/restore${query}`,
          {
            upload: archive,
            onProgress: (p) => {
              progress.onProgress(p);
              if (size !== undefined && p.bytes === size) progress.say('sent; the server is restoring');
            },
          },
        )) as RestoreResult;
      })) ??
      (await withOps(ctx, opts, (ops) =>
        restore(ops, archive, {
          ...(opts.as !== undefined ? { as: opts.as } : {}),
          ...(opts.keepSecret ? { keepSecret: true } : {}),
          onProgress: (p) => {
            progress.onProgress(p);
            if (size !== undefined && p.bytes === size) progress.say('checked; loading the data');
          },
        }),
      ));
  } finally {
    progress.clear();
  }
  if (opts.json) {
    println(ctx.stdout, JSON.stringify({ ...result, seconds: result.ms / 1000 }));
    return 0;
  }
  const what = result.created ? `new app ${result.app} (a clone of ${result.from})` : `app ${result.app}`;
  // The bytes counted as the archive was read (or sent): what the live line showed.
  println(
    ctx.stdout,
    `restored ${what}: ${bytesInTime(progress.archiveBytes() || (size ?? 0), result.ms)} ← ${shownPath(ctx, archive)}`,
  );
  println(ctx.stdout, `  data version ${result.dataVersion}`);
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
