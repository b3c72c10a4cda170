import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export interface LoggerOptions {
  /** @default APPVISOR_LOG_LEVEL, else 'info' */
  readonly level?: string;
  /** Human-readable lines instead of JSON. @default whether stdout is a terminal */
  readonly pretty?: boolean;
  /** Colours in pretty lines. @default on a terminal, unless NO_COLOR is set */
  readonly colorize?: boolean;
}

/** What {@link createLogger} decided, for another thread to log the same way (serve/loop-watcher.ts). */
export interface ResolvedLoggerOptions {
  readonly level: string;
  readonly pretty: boolean;
  readonly colorize: boolean;
}

/** Applies the defaults (environment, terminal) once. */
export function resolveLoggerOptions(options: LoggerOptions = {}): ResolvedLoggerOptions {
  return Object.freeze({
    level: options.level ?? process.env.APPVISOR_LOG_LEVEL ?? 'info',
    pretty: options.pretty ?? Boolean(process.stdout.isTTY),
    colorize: options.colorize ?? (Boolean(process.stdout.isTTY) && !process.env.NO_COLOR),
  });
}

/**
 * The process logger: JSON lines (one object per line, `app` on every app line) for
 * production, human-readable output when stdout is a terminal. Colour only on a TTY and never
 * with NO_COLOR.
 *
 * `fd`: write to that file descriptor synchronously, each line at once. A worker thread passes
 * 1 to log beside the main thread's logger on the process's stdout even while the main thread
 * is blocked (a worker's own `process.stdout` is relayed by the main thread's event loop).
 */
export function createLogger(options: LoggerOptions = {}, fd?: number): Logger {
  const { level, pretty: usePretty, colorize } = resolveLoggerOptions(options);
  if (!usePretty) {
    const base = { pid: process.pid };
    return fd === undefined
      ? pino({ level, base })
      : pino({ level, base }, pino.destination({ fd, sync: true }));
  }
  const stream = pretty({
    colorize,
    sync: true,
    ignore: 'pid,hostname',
    translateTime: 'HH:MM:ss.l',
    ...(fd === undefined ? {} : { destination: fd }),
  });
  return pino({ level }, stream);
}

/** What a tap is handed: each line exactly as pino wrote it (JSON and a newline). */
export type LogLineTap = (line: string) => void;

const TAPS = Symbol('appvisor.logTaps');

interface TappedStream {
  write(line: string): unknown;
  [TAPS]?: Set<LogLineTap>;
}

/**
 * Hands every line `logger` (and each of its children: they share its destination) writes to
 * `tap`, until the returned function is called. The destination's `write` is wrapped once: the
 * tap sees the string pino already serialised, so nothing is serialised twice. pino writes JSON
 * to its destination in pretty mode too (pino-pretty formats it there), so taps see JSON either way.
 */
export function tapLogLines(logger: Logger, tap: LogLineTap): () => void {
  const stream = (logger as unknown as Record<symbol, TappedStream | undefined>)[pino.symbols.streamSym];
  if (stream === undefined || typeof stream.write !== 'function') return () => undefined;
  let taps = stream[TAPS];
  if (taps === undefined) {
    const own = new Set<LogLineTap>();
    taps = own;
    stream[TAPS] = own;
    const write = stream.write.bind(stream);
    stream.write = (line: string) => {
      for (const t of own) {
        try {
          t(line);
        } catch {
          // A tap must never cost the log its line.
        }
      }
      return write(line);
    };
  }
  taps.add(tap);
  const set = taps;
  return () => {
    set.delete(tap);
  };
}
