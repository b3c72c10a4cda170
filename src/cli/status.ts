import type { Command } from 'commander';
import type { AppView } from '../runtime/view.js';
import { adminRequest, CLIENT_HELP, readAdminToken, serverTarget, URL_OPTION_HELP } from './admin-client.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  colorEnabled,
  println,
  type Styles,
  settingsFor,
  styles,
  withConfigOption,
  withJsonOption,
} from './common.js';

interface StatusFlags extends CommonOptions {
  readonly url?: string;
}

/** `appvisor status`: the apps of a running server. */
export function registerStatus(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('status')
    .description('show the apps of a running server')
    .option('--url <url>', URL_OPTION_HELP)
    .addHelpText('after', `\n${CLIENT_HELP}\nExit codes: 0, 1 unreachable or refused.`);
  withConfigOption(cmd);
  withJsonOption(cmd);
  return cmd.action(action(ctx, (opts: StatusFlags) => runStatus(ctx, opts)));
}

export async function runStatus(ctx: CliContext, opts: StatusFlags): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const target = serverTarget(settings, opts.url);
  const token = await readAdminToken(settings.dataDir, ctx.env);
  const apps = await adminRequest<AppView[]>(target, token, 'GET', '_supervisor/api/apps');
  if (opts.json) {
    println(ctx.stdout, JSON.stringify(apps, null, 2));
    return 0;
  }
  printTable(ctx, apps, styles(colorEnabled(ctx.stdout, ctx.env)));
  return 0;
}

function statusColor(status: AppView['status'], s: Styles): (text: string) => string {
  if (status === 'running') return s.green;
  if (status === 'error' || status === 'needs-upgrade') return s.red;
  if (status === 'starting' || status === 'upgrading' || status === 'provisioning' || status === 'stopping')
    return s.yellow;
  return s.dim;
}

function database(app: AppView): string {
  const d = app.database;
  const where = d.schema ? `${d.name}.${d.schema}` : d.name;
  return `${d.dialect ?? '?'}:${where}`;
}

/** What an operator must know beyond the status: a scheduled drop, an operator's stop. */
function note(app: AppView): string {
  if (app.dropAt) return `data drop scheduled for ${app.dropAt} (put the manifest back to cancel)`;
  if (app.intent?.action === 'stop') return `stopped by ${app.intent.by} at ${app.intent.at}`;
  return '';
}

function printTable(ctx: CliContext, apps: readonly AppView[], s: Styles): void {
  if (apps.length === 0) {
    println(ctx.stdout, 'No apps.');
    return;
  }
  const rows = apps.map((a) => [
    a.name,
    a.statusReason ? `${a.status} (${a.statusReason})` : a.status,
    a.database.mode,
    database(a),
    a.domains.join(',') || '-',
    [a.error ? `${a.error.code}: ${a.error.message}` : '', note(a)].filter(Boolean).join('; '),
  ]);
  const header = ['NAME', 'STATUS', 'MODE', 'DATABASE', 'DOMAINS', 'ERROR'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[], color?: (t: string) => string) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
        return i === 1 && color ? color(padded) : padded;
      })
      .join('  ')
      .trimEnd();
  println(ctx.stdout, s.bold(line(header)));
  apps.forEach((a, i) => {
    println(ctx.stdout, line(rows[i]!, statusColor(a.status, s)));
  });
}
