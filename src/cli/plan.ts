import fs from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { planToJson } from '../admin/plan-json.js';
import { AppvisorError } from '../errors.js';
import { computePlan } from '../reconcile/commands.js';
import { ACTION_SIGN, type Plan } from '../reconcile/model.js';
import { planToMarkdown } from '../reconcile/plan-markdown.js';
import { isScheduled } from '../reconcile/planner.js';
import { parseStateExport, type StateExport } from '../state/export-format.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  colorEnabled,
  displayAppsDir,
  println,
  type Styles,
  settingsFor,
  styles,
  withConfigOption,
  withDirOption,
  withJsonOption,
} from './common.js';

/** Refusal codes that mean "could not check", not "decided to refuse". */
const BLOCKED: ReadonlySet<string> = new Set([
  'DB_UNREACHABLE',
  'DB_OPERATION_FAILED',
  'DB_PERMISSION_DENIED',
  'STATE_STORE_FAILED',
]);

/** What `plan --format` prints (SPEC §8.7). */
const FORMATS = ['text', 'json', 'markdown'] as const;
type PlanFormat = (typeof FORMATS)[number];

interface PlanFlags extends CommonOptions {
  readonly allowEmpty?: boolean;
  readonly format?: PlanFormat;
  /** A `state export` file to plan against instead of the state store and the servers. */
  readonly state?: string;
  /** The explicit form of `--state`: no database connection (needs `--state`). */
  readonly offline?: boolean;
}

/** `appvisor plan`: the dry run. */
export function registerPlan(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('plan')
    .description(
      'show what apply/serve would change (+ create, ~ change, - remove, ! refused); changes nothing',
    )
    .option('--allow-empty', 'plan removals even when no valid manifest is left')
    .option('--state <file>', 'plan against this `appvisor state export` file: no database connection at all')
    .option('--offline', 'say so: plan with no database connection (needs --state)')
    // Commander refuses any other value with a usage error that lists the three.
    .addOption(
      new Option('--format <format>', 'output (markdown: a pull-request comment; default: text)').choices(
        FORMATS,
      ),
    )
    .addHelpText(
      'after',
      [
        '',
        'Exit codes: 0 no changes, 2 changes pending (refusals count), 1 error (invalid manifests included).',
        'Offline (a CI job without credentials): `appvisor state export > state.json` where the databases are',
        'reachable, then `appvisor plan --offline --state state.json`.',
      ].join('\n'),
    );
  withDirOption(cmd);
  withConfigOption(cmd);
  withJsonOption(cmd);
  return cmd.action(action(ctx, (opts: PlanFlags) => runPlan(ctx, opts)));
}

export async function runPlan(ctx: CliContext, opts: PlanFlags): Promise<number> {
  // Checked before anything is read: contradicting flags say so before any database is asked.
  const format = planFormat(opts);
  if (opts.offline && opts.state === undefined) {
    throw new Error(
      '--offline plans against a state file: make one with `appvisor state export > state.json` where the databases are reachable, then pass --state state.json',
    );
  }
  const state = opts.state === undefined ? undefined : await readStateExport(ctx, opts.state);
  const settings = await settingsFor(ctx, opts);
  const displayDir = displayAppsDir(ctx, settings, opts);
  const plan = await computePlan(settings, {
    env: ctx.env,
    displayDir,
    ...(opts.allowEmpty ? { allowEmpty: true } : {}),
    ...(state ? { state } : {}),
  });
  if (format === 'json') {
    println(ctx.stdout, JSON.stringify(planToJson(plan), null, 2));
  } else if (format === 'markdown') {
    ctx.stdout.write(planToMarkdown(plan, { now: Date.now() }));
  } else {
    printPlan(ctx, plan, styles(colorEnabled(ctx.stdout, ctx.env)));
  }
  // An invalid manifest, or an app whose server could not be checked, leaves the plan incomplete.
  if (plan.errors.length > 0 || plan.changes.some((c) => c.code !== undefined && BLOCKED.has(c.code)))
    return 1;
  return plan.changes.length > 0 ? 2 : 0;
}

/** The `--state` file, read and checked (STATE_EXPORT_INVALID says what is wrong with it). */
async function readStateExport(ctx: CliContext, file: string): Promise<StateExport> {
  let text: string;
  try {
    text = await fs.readFile(path.resolve(ctx.cwd, file), 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(err);
    throw new AppvisorError('STATE_EXPORT_INVALID', {
      file,
      detail: `cannot be read (${why}); make it with \`appvisor state export > ${file}\``,
    });
  }
  return parseStateExport(text, file);
}

/** `--format` (commander has checked it is one of FORMATS), with `--json` its shorthand. */
function planFormat(opts: PlanFlags): PlanFormat {
  const format = opts.format ?? (opts.json ? 'json' : 'text');
  if (opts.json && format !== 'json') {
    throw new Error(`--json means --format json; drop --json or --format ${format}`);
  }
  return format;
}

function printPlan(ctx: CliContext, plan: Plan, s: Styles): void {
  const width = Math.max(0, ...plan.changes.map((c) => c.app.length));
  const actionWidth = Math.max(0, ...plan.changes.map((c) => c.action.length));
  for (const c of plan.changes) {
    const sign = ACTION_SIGN[c.action];
    const color = sign === '+' ? s.green : sign === '~' ? s.yellow : s.red;
    println(
      ctx.stdout,
      `${color(sign)} ${s.bold(c.app.padEnd(width))}  ${color(c.action.padEnd(actionWidth))}  ${c.detail}`,
    );
  }
  if (plan.guard) println(ctx.stdout, `${s.red('!')} ${plan.guard}`);
  for (const e of plan.errors) println(ctx.stderr, `${e.file}:${e.line}:${e.column}: ${e.message}`);
  const apps = new Set(plan.changes.map((c) => c.app)).size;
  const now = Date.now();
  const scheduled = plan.changes.filter((c) => isScheduled(c, now)).length;
  const later =
    scheduled > 0
      ? ` (${scheduled} scheduled for later: apply carries ${scheduled === 1 ? 'it' : 'them'} out once due)`
      : '';
  const summary =
    plan.changes.length === 0
      ? 'No changes.'
      : `${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'} pending for ${apps} app${apps === 1 ? '' : 's'}${later}.`;
  const invalid =
    plan.errors.length > 0
      ? ` ${plan.errors.length} manifest error${plan.errors.length === 1 ? '' : 's'}: those apps keep their last applied spec.`
      : '';
  println(ctx.stdout, `${summary}${invalid}`);
}
