import http from 'node:http';
import https from 'node:https';
import type { Command } from 'commander';
import { parseDuration } from '../config/duration.js';
import { AppvisorError, messageOf } from '../errors.js';
import { SseMessages } from '../http/sse-messages.js';
import { urlUnder } from '../http/url-under.js';
import type { AppLogLine } from '../serve/app-logs.js';
import {
  adminRequest,
  CLIENT_HELP,
  cliClient,
  readAdminToken,
  type ServerTarget,
  serverTarget,
  URL_OPTION_HELP,
} from './admin-client.js';
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

interface LogsFlags extends CommonOptions {
  readonly url?: string;
  readonly follow?: boolean;
  readonly since?: string;
}

/** pino's numeric levels by name, for the printed line. */
const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields a printed line shows in its own place (or not at all: the app is the one asked for). */
const OWN_PLACE = new Set(['time', 'level', 'msg', 'app']);

/** `appvisor logs NAME`: an app's recent lines on a running server (SPEC §8.7). */
export function registerLogs(program: Command, ctx: CliContext): Command {
  const cmd = program
    .command('logs')
    .description("print an app's recent log lines from a running server (-f: and follow new ones)")
    .argument('<name>', 'the app')
    .option('-f, --follow', 'keep printing new lines as they are logged, until Ctrl-C')
    .option('--since <duration>', 'only lines from this long ago on, e.g. 30s, 10m, 1h')
    .option('--url <url>', URL_OPTION_HELP)
    .addHelpText(
      'after',
      `\nLines come from every live replica of the server, each marked with its replica, merged by time; each replica keeps the last 1,000 per app (fewer for long lines). A replica that does not answer is named on stderr.\n${CLIENT_HELP}\nExit codes: 0 (also after Ctrl-C with -f), 1 unreachable, refused, unknown app or a bad --since.`,
    );
  withConfigOption(cmd);
  withJsonOption(cmd);
  return cmd.action(action(ctx, (name: string, opts: LogsFlags) => runLogs(ctx, name, opts)));
}

export async function runLogs(ctx: CliContext, name: string, opts: LogsFlags): Promise<number> {
  if (opts.since !== undefined && parseDuration(opts.since) === undefined) {
    throw new AppvisorError('CONFIG_INVALID', {
      source: '--since',
      detail: `${opts.since} is not a duration; write e.g. --since 30s, --since 10m or --since 1h`,
    });
  }
  const settings = await settingsFor(ctx, opts);
  const target = serverTarget(settings, opts.url);
  const token = await readAdminToken(settings.dataDir, ctx.env);
  const route = `_supervisor/api/apps/${encodeURIComponent(name)}/logs`;
  const query = opts.since === undefined ? '' : `since=${encodeURIComponent(opts.since)}`;
  const s = styles(colorEnabled(ctx.stdout, ctx.env));
  const print = (line: AppLogLine): void =>
    println(ctx.stdout, opts.json ? JSON.stringify(line) : formatLine(line, s));
  // The plain call first, also with -f: an unknown app or an unreachable server is said plainly.
  const { lines, unreachable } = await adminRequest<{ lines: AppLogLine[]; unreachable?: string[] }>(
    target,
    token,
    'GET',
    query ? `${route}?${query}` : route,
  );
  // The other replicas' lines are missing, not the command failed: said on stderr, exit 0.
  const missing = (replica: string, reason?: string): void =>
    println(
      ctx.stderr,
      `appvisor: replica ${replica} did not answer${reason ? ` (${reason})` : ''}; its lines are missing`,
    );
  if (!opts.follow) {
    for (const line of lines) print(line);
    for (const replica of unreachable ?? []) missing(replica);
    return 0;
  }
  // The stream sends the kept lines again: they are printed from it, in order with the new ones.
  await followLines(target, token, `${route}?${query ? `${query}&` : ''}follow=1`, {
    line: print,
    unreachable: (u) => missing(u.replica, u.reason),
  });
  return 0;
}

/** `2026-12-07T16:21:45.123Z INFO  msg key=value …` */
export function formatLine(line: AppLogLine, s: Styles): string {
  const level = LEVEL_NAMES[line.level] ?? String(line.level);
  const colour = line.level >= 50 ? s.red : line.level >= 40 ? s.yellow : (t: string) => t;
  const fields = Object.entries(line)
    .filter(([key]) => !OWN_PLACE.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? quoted(value) : JSON.stringify(value)}`);
  return [new Date(line.time).toISOString(), colour(level.padEnd(5)), line.msg, ...fields].join(' ');
}

/** A value as is, or JSON-quoted when it holds a space, a quote or `=` (one line stays one line). */
function quoted(value: string): string {
  return /^[^\s"=]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
}

/**
 * Reads the SSE stream, calling `deliver` with each `event: line` (and `event: unreachable`), until the server ends it or
 * the user presses Ctrl-C (then it resolves: following is how the command is meant to end).
 */
function followLines(
  target: ServerTarget,
  token: string,
  route: string,
  deliver: {
    readonly line: (line: AppLogLine) => void;
    readonly unreachable: (u: { replica: string; reason?: string }) => void;
  },
): Promise<void> {
  const url = urlUnder(target.url, route);
  const client = url.protocol === 'https:' ? https : http;
  const headers: http.OutgoingHttpHeaders = {
    authorization: `Bearer ${token}`,
    accept: 'text/event-stream',
    'x-appvisor-client': cliClient(),
  };
  if (target.host !== undefined) headers.host = target.host;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method: 'GET', headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new AppvisorError('APP_ERROR', {}, { message: `following failed: HTTP ${res.statusCode}` }));
        return;
      }
      res.setEncoding('utf8');
      const messages = new SseMessages();
      res.on('data', (chunk: string) => {
        for (const { type, data } of messages.push(chunk)) {
          if (data && type === 'line') deliver.line(JSON.parse(data) as AppLogLine);
          if (data && type === 'unreachable') deliver.unreachable(JSON.parse(data));
        }
      });
      res.on('end', finish);
      res.on('error', finish);
    });
    const onSigint = (): void => {
      req.destroy();
      finish();
    };
    function finish(): void {
      process.off('SIGINT', onSigint);
      resolve();
    }
    process.once('SIGINT', onSigint);
    req.on('error', (err) => {
      // After Ctrl-C the promise is resolved already and this changes nothing.
      process.off('SIGINT', onSigint);
      reject(
        new AppvisorError('SERVER_UNREACHABLE', {
          url: target.url,
          detail: `${messageOf(err)} while following; is \`appvisor serve\` still running there?`,
        }),
      );
    });
    req.end();
  });
}
