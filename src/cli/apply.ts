import type { Command } from 'commander';
import { createLogger } from '../log.js';
import { applyPlan } from '../reconcile/commands.js';
import type { StepOutcome } from '../reconcile/executor.js';
import { ACTION_SIGN } from '../reconcile/model.js';
import { applyProgress } from './apply-progress.js';
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
} from './common.js';

interface ApplyFlags extends CommonOptions {
  readonly allowEmpty?: boolean;
}

/** `appvisor apply`: carry out the provisioning steps of the plan. */
export function registerApply(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('apply')
    .description('create databases, schemas, secrets and records, and run migrations, as planned')
    .option('--allow-empty', 'carry out removals even when no valid manifest is left')
    .addHelpText(
      'after',
      '\nStarting, stopping and routing apps is left to a running `appvisor serve`.\nExit codes: 0 done, 1 a step failed (or a manifest is invalid).',
    );
  withDirOption(cmd);
  withConfigOption(cmd);
  return cmd.action(action(ctx, (opts: ApplyFlags) => runApply(ctx, opts)));
}

export async function runApply(ctx: CliContext, opts: ApplyFlags): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const displayDir = displayAppsDir(ctx, settings, opts);
  const s = styles(colorEnabled(ctx.stdout, ctx.env));
  // Step lines go to stdout; the structured log (warnings only) to stderr.
  const log = createLogger({ level: 'warn', pretty: true });
  const progress = applyProgress(ctx, s);
  const report = await applyPlan(settings, {
    env: ctx.env,
    displayDir,
    log,
    ...(opts.allowEmpty ? { allowEmpty: true } : {}),
    onPlan: (plan) => progress.planned(plan.changes.length),
    onApp: (_i, _total, name) => progress.app(name),
    onStep: (o: StepOutcome) => {
      const sign = ACTION_SIGN[o.step.action];
      const result =
        o.result === 'failed'
          ? s.red('failed')
          : o.result === 'skipped' || o.result === 'unchanged' || o.result === 'scheduled'
            ? s.dim(o.result)
            : s.green(o.result);
      const why = o.message ? `: ${o.message}` : '';
      progress.step(
        `${sign} ${s.bold(o.step.app)} ${o.step.action} ${result} (${Math.round(o.ms)} ms) ${s.dim(o.step.detail)}${why}`,
      );
    },
  }).finally(() => progress.finish());
  for (const e of report.plan.errors) println(ctx.stderr, `${e.file}:${e.line}:${e.column}: ${e.message}`);
  if (report.plan.guard) println(ctx.stdout, `${s.red('!')} ${report.plan.guard}`);
  for (const f of report.failures) println(ctx.stderr, `appvisor: ${f.app}: ${f.code}: ${f.message}`);
  const done = report.outcomes.filter(
    (o) => o.result !== 'failed' && o.result !== 'skipped' && o.result !== 'scheduled',
  ).length;
  const later = report.outcomes.filter((o) => o.result === 'scheduled').length;
  if (report.outcomes.length === 0 && report.failures.length === 0) println(ctx.stdout, 'Nothing to do.');
  else
    println(
      ctx.stdout,
      `${done} step${done === 1 ? '' : 's'} done, ${later > 0 ? `${later} scheduled for later, ` : ''}${report.failures.length} app${report.failures.length === 1 ? '' : 's'} failed.`,
    );
  return report.failures.length > 0 || report.plan.errors.length > 0 ? 1 : 0;
}
