import type { Command } from 'commander';
import type { AppView } from '../runtime/view.js';
import { adminRequest, CLIENT_HELP, readAdminToken, serverTarget, URL_OPTION_HELP } from './admin-client.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  println,
  settingsFor,
  withConfigOption,
} from './common.js';

interface Flags extends CommonOptions {
  readonly url?: string;
}

/** `appvisor start NAME` and `appvisor stop NAME`: ask a running server. */
export function registerStartStop(program: Command, ctx: CliContext): void {
  for (const verb of ['start', 'stop'] as const) {
    const cmd = program
      .command(`${verb} <name>`)
      .description(`ask a running server to ${verb} one app`)
      .option('--url <url>', URL_OPTION_HELP)
      .addHelpText(
        'after',
        `\n${CLIENT_HELP}\n${verb === 'stop' ? 'A stop is kept on the app record: it holds across restarts and manifest changes until a start, and visits get 503 APP_STOPPED.\n' : ''}Exit codes: 0, 1 refused, unknown app or unreachable.`,
      );
    withConfigOption(cmd);
    cmd.action(action(ctx, (name: string, opts: Flags) => runStartStop(ctx, verb, name, opts)));
  }
}

export async function runStartStop(
  ctx: CliContext,
  verb: 'start' | 'stop',
  name: string,
  opts: Flags,
): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const target = serverTarget(settings, opts.url);
  const token = await readAdminToken(settings.dataDir, ctx.env);
  const app = await adminRequest<AppView>(
    target,
    token,
    'POST',
    `_supervisor/api/apps/${encodeURIComponent(name)}/${verb}`,
  );
  println(ctx.stdout, `${verb === 'start' ? 'Starting' : 'Stopping'} ${app.name} (status: ${app.status}).`);
  return 0;
}
