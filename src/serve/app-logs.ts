/**
 * The recent log lines of each app, kept in memory for `appvisor logs` and
 * `GET /_supervisor/api/apps/<name>/logs` (SPEC §8.7).
 *
 * Bounded three ways, so 10,000 apps cannot grow the supervisor without end: each app keeps at
 * most `perAppLines` lines and `perAppBytes` bytes (its oldest lines go first), and all apps
 * together at most `totalBytes`; past that, the apps written to least recently lose their whole
 * buffer first (an app that logs nothing for long is the one least likely to be asked about).
 * With the defaults, 10,000 apps cost at most 64 MiB, however much each one logs.
 */

/** One line as the API answers it: pino's fields, plus the replica that logged it. */
export interface AppLogLine {
  /** Milliseconds since the epoch (pino's `time`). */
  readonly time: number;
  /** pino's numeric level (30 info, 40 warn, 50 error, …). */
  readonly level: number;
  readonly msg: string;
  readonly app: string;
  readonly replica: string;
  readonly [field: string]: unknown;
}

export interface AppLogsOptions {
  /** This replica's id, written on each line. */
  readonly replica: string;
  /** @default 1000 */
  readonly perAppLines?: number;
  /** @default 256 KiB */
  readonly perAppBytes?: number;
  /** @default 64 MiB */
  readonly totalBytes?: number;
}

export interface AppLogQuery {
  /** Only lines at or after this time (ms since the epoch). */
  readonly since?: number;
  /** Only the last this many lines. */
  readonly limit?: number;
}

interface Entry {
  readonly line: AppLogLine;
  readonly bytes: number;
}

interface Buffer {
  entries: Entry[];
  /** Index of the oldest entry still kept (dropped ones are spliced off in batches). */
  head: number;
  bytes: number;
}

/** Fields pino writes that the API does not repeat (the process is the replica's). */
const DROPPED_FIELDS = new Set(['pid', 'hostname']);

export class AppLogs {
  readonly #replica: string;
  readonly #perAppLines: number;
  readonly #perAppBytes: number;
  readonly #totalBytes: number;
  /** Insertion order is recency of writing: an app written to moves to the end. */
  readonly #buffers = new Map<string, Buffer>();
  readonly #followers = new Map<string, Set<(line: AppLogLine) => void>>();
  #bytes = 0;

  constructor(options: AppLogsOptions) {
    this.#replica = options.replica;
    this.#perAppLines = options.perAppLines ?? 1000;
    this.#perAppBytes = options.perAppBytes ?? 256 * 1024;
    this.#totalBytes = options.totalBytes ?? 64 * 1024 * 1024;
  }

  /** Total bytes kept (of the JSON lines as pino wrote them). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Takes one line as pino wrote it (a JSON object and a newline). Lines without a top-level
   * `app` string are not an app's and are ignored; a cheap substring test skips most of them
   * before any parsing.
   */
  addRaw(raw: string): void {
    if (!raw.includes('"app":')) return;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return;
    }
    const app = parsed.app;
    if (typeof app !== 'string' || app === '') return;
    const line: Record<string, unknown> = {
      time: typeof parsed.time === 'number' ? parsed.time : Date.now(),
      level: typeof parsed.level === 'number' ? parsed.level : 30,
      msg: typeof parsed.msg === 'string' ? parsed.msg : '',
    };
    for (const [key, value] of Object.entries(parsed)) {
      if (!(key in line) && !DROPPED_FIELDS.has(key)) line[key] = value;
    }
    line.replica = this.#replica;
    this.#add(app, line as AppLogLine, raw.length);
  }

  /** The app's kept lines, oldest first. */
  lines(app: string, query: AppLogQuery = {}): AppLogLine[] {
    const buffer = this.#buffers.get(app);
    if (!buffer) return [];
    let lines = buffer.entries.slice(buffer.head).map((e) => e.line);
    if (query.since !== undefined) {
      const since = query.since;
      lines = lines.filter((l) => l.time >= since);
    }
    if (query.limit !== undefined) lines = lines.slice(Math.max(0, lines.length - query.limit));
    return lines;
  }

  /** Calls `deliver` with each new line of `app` until the returned function is called. */
  follow(app: string, deliver: (line: AppLogLine) => void): () => void {
    let set = this.#followers.get(app);
    if (!set) {
      set = new Set();
      this.#followers.set(app, set);
    }
    set.add(deliver);
    return () => {
      set.delete(deliver);
      if (set.size === 0 && this.#followers.get(app) === set) this.#followers.delete(app);
    };
  }

  /** Forgets the app's lines (it was removed). */
  drop(app: string): void {
    const buffer = this.#buffers.get(app);
    if (!buffer) return;
    this.#bytes -= buffer.bytes;
    this.#buffers.delete(app);
  }

  #add(app: string, line: AppLogLine, bytes: number): void {
    let buffer = this.#buffers.get(app);
    if (buffer) this.#buffers.delete(app);
    else buffer = { entries: [], head: 0, bytes: 0 };
    this.#buffers.set(app, buffer);
    buffer.entries.push({ line, bytes });
    buffer.bytes += bytes;
    this.#bytes += bytes;
    while (
      buffer.entries.length - buffer.head > 1 &&
      (buffer.entries.length - buffer.head > this.#perAppLines || buffer.bytes > this.#perAppBytes)
    ) {
      const oldest = buffer.entries[buffer.head++]!;
      buffer.bytes -= oldest.bytes;
      this.#bytes -= oldest.bytes;
    }
    // Dropped entries are cut off once they are as many as the kept ones: O(1) per line on average.
    if (buffer.head > 0 && buffer.head >= buffer.entries.length - buffer.head) {
      buffer.entries = buffer.entries.slice(buffer.head);
      buffer.head = 0;
    }
    for (const name of this.#buffers.keys()) {
      if (this.#bytes <= this.#totalBytes || name === app) break;
      this.drop(name);
    }
    const followers = this.#followers.get(app);
    if (followers) for (const deliver of followers) deliver(line);
  }
}
