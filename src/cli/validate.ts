import path from 'node:path';
import type { Command } from 'commander';
import { describeMainDatabase } from '../config/main-database.js';
import type { Settings } from '../config/types.js';
import { parseDatabaseUrl } from '../dialects/registry.js';
import { redactUrl } from '../dialects/url.js';
import { AppvisorError } from '../errors.js';
import { checkApplications, knownApplications } from '../manifests/applications-check.js';
import { readTextFileSync } from '../manifests/files.js';
import { allErrors, loadManifests } from '../manifests/load.js';
import { parseYaml } from '../manifests/parse.js';
import type { InvalidFile, LoadedManifest, ManifestSet } from '../manifests/types.js';
import { resolveTarget } from '../reconcile/target.js';
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
      '\nAlso checks each database mode against the main database of the settings (appvisor.yaml, APPVISOR_DATABASE_URL): new-schema needs PostgreSQL.\nExit codes: 0 all manifests valid, 1 any invalid (or the apps folder is missing).',
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
  const set = checkAgainstSettings(
    checkApplications(
      await loadManifests(settings.appsDir, { env: ctx.env, displayDir }),
      knownApplications(settings),
    ),
    settings,
    ctx,
  );
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

/**
 * What a manifest cannot do with the main database of the settings (new-schema on SQLite or
 * MySQL), found by the planner's own rule (resolveTarget) and reported at the `database.mode`
 * value, with where the main database came from and how to point to another.
 */
function checkAgainstSettings(set: ManifestSet, settings: Settings, ctx: CliContext): ManifestSet {
  const main = describeMainDatabase(settings.database.url, settings.dataDir);
  const apps: LoadedManifest[] = [];
  const invalid: InvalidFile[] = [];
  for (const app of set.apps) {
    const target = resolveTarget(app.manifest, main);
    if (!(target instanceof AppvisorError)) {
      apps.push(app);
      continue;
    }
    const at = locateInFile(path.join(settings.appsDir, path.basename(app.file)), ['database', 'mode']);
    const message = `${target.message} (${describeSource(settings, ctx)}); set APPVISOR_DATABASE_URL or database.url in appvisor.yaml to a postgres://user:password@host:port/db URL, or choose another database.mode`;
    invalid.push({ file: app.file, name: app.manifest.name, errors: [{ file: app.file, ...at, message }] });
  }
  if (invalid.length === 0) return set;
  return { dir: set.dir, apps, invalid: [...set.invalid, ...invalid] };
}

/** `sqlite:data/main.sqlite, the default` / `postgres://…, from APPVISOR_DATABASE_URL`. */
function describeSource(settings: Settings, ctx: CliContext): string {
  const url = parseDatabaseUrl(settings.database.url);
  const shown =
    url.filename !== undefined && url.filename !== ':memory:'
      ? `sqlite:${displayPath(ctx.cwd, url.filename)}`
      : redactUrl(url.url);
  const fromEnv = ctx.env.APPVISOR_DATABASE_URL !== undefined && ctx.env.APPVISOR_DATABASE_URL !== '';
  if (fromEnv) return `${shown}, from APPVISOR_DATABASE_URL`;
  const isDefault = settings.database.url === `sqlite:${path.join(settings.dataDir, 'main.sqlite')}`;
  if (isDefault) return `${shown}, the default`;
  const file = settings.configFile === undefined ? 'the settings' : displayPath(ctx.cwd, settings.configFile);
  return `${shown}, from database.url in ${file}`;
}

function displayPath(cwd: string, file: string): string {
  const relative = path.relative(cwd, file);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

/** Where `at` is in a manifest file (re-read: only for a file that has such an error). */
function locateInFile(file: string, at: readonly string[]): { line: number; column: number } {
  const read = readTextFileSync(file);
  if (!read.ok) return { line: 1, column: 1 };
  const { source } = parseYaml(read.text);
  return source.position(source.locate(at).valueOffset);
}
