import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * The process logger: JSON lines (one object per line, `app` on every app line) for
 * production, human-readable output when stdout is a terminal. Colour only on a TTY and never
 * with NO_COLOR.
 */
export function createLogger(options: { level?: string; pretty?: boolean } = {}): Logger {
  const level = options.level ?? process.env.APPVISOR_LOG_LEVEL ?? 'info';
  const usePretty = options.pretty ?? Boolean(process.stdout.isTTY);
  if (!usePretty) return pino({ level, base: { pid: process.pid } });
  const stream = pretty({
    colorize: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
    sync: true,
    ignore: 'pid,hostname',
    translateTime: 'HH:MM:ss.l',
  });
  return pino({ level }, stream);
}
