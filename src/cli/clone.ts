import type { Command } from 'commander';
import { clone } from '../ops/clone.js';
import type { RestoreResult } from '../ops/restore.js';
import { adminTransfer, CLIENT_HELP, URL_OPTION_HELP, whenServerAnswers } from './admin-client.js';
import { seconds, shownPath, withOps } from './backup.js';
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
  const result =
    (await whenServerAnswers(
      settings,
      ctx.env,
      opts.url,
      async (target, token) =>
        (await adminTransfer(target, token, `_supervisor/api/apps/${encodeURIComponent(src)}/clone`, {
          json: { as: dest, keepSecret: opts.keepSecret === true },
        })) as RestoreResult,
    )) ??
    (await withOps(ctx, opts, (ops) => clone(ops, src, dest, opts.keepSecret ? { keepSecret: true } : {})));
  if (opts.json) {
    println(ctx.stdout, JSON.stringify({ ...result, seconds: result.ms / 1000 }));
    return 0;
  }
  println(
    ctx.stdout,
    `Cloned ${src} into new app ${dest}: data version ${result.dataVersion}, ${seconds(result.ms)}`,
  );
  if (result.manifestFile) {
    println(
      ctx.stdout,
      `  manifest written to ${shownPath(ctx, result.manifestFile)} (commit it with your manifests)`,
    );
  }
  return 0;
}
