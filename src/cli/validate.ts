import type { Command } from 'commander';
import { allErrors, loadManifests } from '../manifests/load.js';
import type { ManifestSet } from '../manifests/types.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  colorEnabled,
  displayAppsDir,
  println,
  settingsFor,
  styles,
  withConfigOption,
  withDirOption,
  withJsonOption,
} from './common.js';

/** `appvisor validate`: parse and check every manifest; exit 0 when all are valid, 1 otherwise. */
export function registerValidate(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('validate')
    .description(
      'parse and check every manifest in the apps folder; print each error as file:line:col: message',
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 all manifests valid, 1 any invalid (or the apps folder is missing).',
    );
  withDirOption(cmd);
  withConfigOption(cmd);
  withJsonOption(cmd);
  return cmd.action(action(ctx, (opts: CommonOptions) => runValidate(ctx, opts)));
}

/** The command itself; returns the exit code. */
export async function runValidate(ctx: CliContext, opts: CommonOptions): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const displayDir = displayAppsDir(ctx, settings, opts);
  const set = await loadManifests(settings.appsDir, { env: ctx.env, displayDir });
  if (opts.json) printJson(ctx, set);
  else printText(ctx, set, displayDir);
  return set.invalid.length === 0 ? 0 : 1;
}

function printJson(ctx: CliContext, set: ManifestSet): void {
  const errors = allErrors(set).map(({ file, line, column, message }) => ({ file, line, column, message }));
  const apps = set.apps.map((app) => app.manifest.name);
  println(ctx.stdout, JSON.stringify({ errors, apps }, null, 2));
}

function printText(ctx: CliContext, set: ManifestSet, displayDir: string): void {
  const s = styles(colorEnabled(ctx.stdout, ctx.env));
  for (const error of allErrors(set)) {
    println(ctx.stdout, `${s.bold(`${error.file}:${error.line}:${error.column}`)}: ${error.message}`);
  }
  const total = set.apps.length + set.invalid.length;
  const manifests = (n: number) => `${n} manifest${n === 1 ? '' : 's'}`;
  if (total === 0) println(ctx.stdout, s.yellow(`no manifests in ${displayDir}`));
  else if (set.invalid.length === 0)
    println(ctx.stdout, s.green(`${manifests(total)} valid in ${displayDir}`));
  else println(ctx.stdout, s.red(`${set.invalid.length} of ${manifests(total)} invalid in ${displayDir}`));
}
