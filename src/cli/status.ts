import type { Command } from 'commander';
import type { AppView, ClusterView, ReplicaView } from '../runtime/view.js';
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
    // The apps array as ever (each app now with its `replicas`): parsers of it keep working.
    println(ctx.stdout, JSON.stringify(apps, null, 2));
    return 0;
  }
  // A server from before replicas answers 404 here: its table is printed without them.
  const [replicas, cluster] = await Promise.all([
    adminRequest<ReplicaView[]>(target, token, 'GET', '_supervisor/api/replicas').catch(() => undefined),
    adminRequest<ClusterView>(target, token, 'GET', '_supervisor/api/cluster').catch(() => undefined),
  ]);
  const s = styles(colorEnabled(ctx.stdout, ctx.env));
  printTable(ctx, apps, s);
  if (replicas !== undefined) printReplicas(ctx, replicas, s);
  const found = warnings(replicas ?? [], cluster);
  if (found.length > 0) println(ctx.stdout, '');
  for (const warning of found) println(ctx.stdout, s.yellow(`warning: ${warning}`));
  return 0;
}

/** `2/3 running`: on how many of the live replicas the app runs. */
function replicaCell(app: AppView): string {
  const on = app.replicas ?? [];
  if (on.length === 0) return '-';
  return `${on.filter((r) => r.status === 'running').length}/${on.length} running`;
}

function printReplicas(ctx: CliContext, replicas: readonly ReplicaView[], s: Styles): void {
  if (replicas.length === 0) return;
  const rows = replicas.map((r) => [
    r.self ? `${r.id} (this one)` : r.id,
    r.leader ? 'leader' : 'follower',
    r.live ? 'live' : 'dead',
    r.host,
    String(r.pid),
    r.version,
    r.lastSeenAt,
  ]);
  println(ctx.stdout, '');
  printColumns(ctx, ['REPLICA', 'ROLE', 'STATE', 'HOST', 'PID', 'VERSION', 'LAST SEEN'], rows, s, (i) => {
    const r = replicas[i]!;
    return r.live ? (r.leader ? s.green : (t: string) => t) : s.red;
  });
}

/** What an operator must act on across replicas: drifted manifests, an overdrawn connection budget. */
function warnings(replicas: readonly ReplicaView[], cluster: ClusterView | undefined): string[] {
  const out = replicas
    .filter((r) => r.live && r.drift.length > 0)
    .map(
      (r) =>
        `replica ${r.id}: its apps.d differs from what is applied for ${r.drift.join(', ')} (it does not act on them)`,
    );
  if (cluster?.warning) out.push(cluster.warning);
  return out;
}

function statusColor(status: AppView['status'], s: Styles): (text: string) => string {
  if (status === 'running') return s.green;
  if (status === 'error' || status === 'needs-upgrade') return s.red;
  if (status === 'starting' || status === 'upgrading' || status === 'provisioning' || status === 'stopping')
    return s.yellow;
  return s.dim;
}

/**
 * The application the app runs: `crm:crm-app@2` for the one settings key `crm` picks,
 * `appvisor-sample@1` for the default one; `-` from a server that does not say.
 */
function application(app: AppView): string {
  const a = app.application;
  if (!a) return '-';
  return `${a.key === null ? '' : `${a.key}:`}${a.name}@${a.version}`;
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

/** The status, why appvisor stopped it, and where an isolated app runs: `running [worker, 41 MiB]`. */
function statusCell(app: AppView): string {
  const status = app.statusReason ? `${app.status} (${app.statusReason})` : app.status;
  const iso = app.isolation;
  if (!iso || iso.mode === 'shared') return status;
  return `${status} [${iso.mode}${iso.memoryMb !== undefined ? `, ${iso.memoryMb} MiB` : ''}]`;
}

function printTable(ctx: CliContext, apps: readonly AppView[], s: Styles): void {
  if (apps.length === 0) {
    println(ctx.stdout, 'No apps.');
    return;
  }
  const rows = apps.map((a) => [
    a.name,
    statusCell(a),
    replicaCell(a),
    application(a),
    a.database.mode,
    database(a),
    a.domains.join(',') || '-',
    [a.error ? `${a.error.code}: ${a.error.message}` : '', note(a)].filter(Boolean).join('; '),
  ]);
  const header = ['NAME', 'STATUS', 'REPLICAS', 'APPLICATION', 'MODE', 'DATABASE', 'DOMAINS', 'ERROR'];
  printColumns(ctx, header, rows, s, (i) => statusColor(apps[i]!.status, s));
}

/** A table padded to its widest cells; `color(row)` colours each row's second column. */
function printColumns(
  ctx: CliContext,
  header: readonly string[],
  rows: readonly string[][],
  s: Styles,
  color: (row: number) => (text: string) => string,
): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[], paint?: (t: string) => string) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
        return i === 1 && paint ? paint(padded) : padded;
      })
      .join('  ')
      .trimEnd();
  println(ctx.stdout, s.bold(line(header)));
  rows.forEach((row, i) => {
    println(ctx.stdout, line(row, color(i)));
  });
}
