import type { Command } from 'commander';
import { exportState } from '../reconcile/state-export.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  displayAppsDir,
  println,
  settingsFor,
  withConfigOption,
  withDirOption,
} from './common.js';

/** `appvisor state export`: what `plan --state FILE` plans against, without a secret (SPEC §8.7). */
export function registerState(program: Command, ctx: CliContext): Command {
  const state = program.command('state').description('the state store, for use elsewhere');
  const exportCmd = state
    .command('export')
    .description(
      'print the applied records and what the database servers hold, as JSON without secrets, for `plan --state FILE`',
    )
    .addHelpText(
      'after',
      [
        '',
        'Reads the state store and the servers the records and the manifests in the apps folder point at,',
        'as plan does; changes nothing. Then, where no database can be reached (a CI job without credentials):',
        '  appvisor state export > state.json',
        '  appvisor plan --offline --state state.json --format markdown',
      ].join('\n'),
    );
  withDirOption(exportCmd);
  withConfigOption(exportCmd);
  return exportCmd.action(
    action(ctx, async (opts: CommonOptions) => {
      const settings = await settingsFor(ctx, opts);
      const doc = await exportState(settings, {
        env: ctx.env,
        displayDir: displayAppsDir(ctx, settings, opts),
      });
      println(ctx.stdout, JSON.stringify(doc, null, 2));
      return 0;
    }),
  );
}
