import type { Command } from 'commander';
import type { Logger } from 'pino';
import { ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE } from '../admin/token.js';
import type { Settings } from '../config/types.js';
import { messageOf } from '../errors.js';
import { normaliseHost } from '../gateway/route.js';
import { createLogger, resolveLoggerOptions } from '../log.js';
import { currentApp } from '../runtime/app-context.js';
import { startSupervisor } from '../serve/supervisor.js';
import {
  action,
  type CliContext,
  type CommonOptions,
  settingsFor,
  withConfigOption,
  withDirOption,
} from './common.js';

/** How long a graceful shutdown may take before the process exits anyway. */
const GRACE_MS = 10_000;

/** `appvisor serve`: the main job. */
export function registerServe(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('serve')
    .description(
      'run the gateway, the apps, the admin UI/API and the watcher; converge continuously to the manifests',
    )
    .addHelpText(
      'after',
      '\nStops gracefully on SIGINT/SIGTERM (a second signal exits at once). Exit code 0 after a clean shutdown.',
    );
  withDirOption(cmd);
  withConfigOption(cmd);
  return cmd.action(action(ctx, (opts: CommonOptions) => runServe(ctx, opts)));
}

export async function runServe(ctx: CliContext, opts: CommonOptions): Promise<number> {
  const settings = await settingsFor(ctx, opts);
  const logOptions = resolveLoggerOptions();
  const log = createLogger(logOptions);
  // One app's stray async error must not take every other app down with it: log it loudly,
  // naming the app whose code scheduled it (see runtime/app-context.ts), and keep serving.
  // (A handler's own errors are contained per request by the gateway.)
  process.on('unhandledRejection', (reason) => logStray(log, 'unhandled promise rejection', reason));
  process.on('uncaughtException', (err) => logStray(log, 'uncaught exception', err));

  // One event loop per process: this is where it is watched (a blocked loop is logged while it lasts).
  const supervisor = await startSupervisor({ settings, log, env: ctx.env, loopWatch: { log: logOptions } });
  const admin = adminUrl(supervisor.url, settings);
  // No file and no token of its own: the stored token was made by another replica (logged above).
  const token =
    supervisor.adminTokenFile ??
    (supervisor.adminToken === undefined ? `another replica's data/${ADMIN_TOKEN_FILE}` : ADMIN_TOKEN_ENV);
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      const force = setTimeout(() => {
        log.error({ graceMs: GRACE_MS }, 'shutdown took too long; exiting');
        process.exit(1);
      }, GRACE_MS + 5_000);
      force.unref();
      supervisor
        .close({ graceMs: GRACE_MS })
        .catch((err) => log.error({ err: messageOf(err) }, 'shutdown failed'))
        .finally(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  log.info(
    { url: supervisor.url, admin, appsDir: settings.appsDir, adminTokenFrom: token },
    `serving; admin UI at ${admin} (token: ${token})`,
  );
  await stopped;
  return 0;
}

function logStray(log: Logger, what: string, err: unknown): void {
  const app = currentApp();
  const stack = err instanceof Error ? err.stack : undefined;
  log.error({ app, err: messageOf(err), stack }, app === undefined ? what : `${what} in app ${app}`);
}

/** The admin UI's URL: on the listen address, or on the first of `admin.hosts` when that address is not one of them. */
function adminUrl(url: string, settings: Settings): string {
  const hosts = settings.admin?.hosts;
  const listened = new URL(url);
  if (hosts === undefined || hosts.some((h) => normaliseHost(h) === normaliseHost(listened.host))) {
    return `${url}/_supervisor/`;
  }
  return `http://${hosts[0]}:${listened.port}/_supervisor/`;
}
