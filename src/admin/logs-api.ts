import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../config/duration.js';
import { AppvisorError } from '../errors.js';
import { sendError } from '../http/errors.js';
import type { AppLogLine } from '../serve/app-logs.js';
import type { LogFanout } from './logs-fanout.js';
import { sendJson } from './respond.js';
import type { AppLogSource } from './types.js';

/** The most lines one answer holds (a buffer keeps about this many anyway). */
const MAX_LIMIT = 10_000;

export interface LogStreamOptions {
  /** Interval of the heartbeat comment. @default 15000 */
  readonly heartbeatMs?: number;
  /**
   * A client this far behind (bytes still buffered when a new line comes, after the backlog) is
   * dropped rather than buffered without end. @default 1 MiB
   */
  readonly maxBufferedBytes?: number;
}

/**
 * `GET /_supervisor/api/apps/<name>/logs[?since=10m][&limit=N][&follow=1]` (SPEC §8.7).
 *
 * Without `follow`: `{app, lines}`, oldest first. With `follow=1`: Server-Sent Events, one
 * `event: line` per line (the kept ones matching `since`/`limit` first, then each new one as it
 * is logged), a `: heartbeat` comment to keep idle proxies from closing the stream; it ends
 * when the client goes or the server shuts down (`closeAll`).
 *
 * With a `fanout` (a request that no other replica passed on), the answer holds the lines of
 * every live replica (logs-fanout.ts): JSON adds `unreachable: [replica id]`, the stream an
 * `event: unreachable` per replica that did not answer.
 */
export class LogStreams {
  readonly #open = new Set<ServerResponse>();
  readonly #heartbeatMs: number;
  readonly #maxBufferedBytes: number;

  constructor(options: LogStreamOptions = {}) {
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  }

  /** Answers one request for `app`'s lines (the app is known to exist). */
  async answer(
    req: IncomingMessage,
    res: ServerResponse,
    app: string,
    logs: AppLogSource,
    fanout?: LogFanout,
  ): Promise<void> {
    let query: { since?: number; limit?: number; follow: boolean };
    try {
      query = parseQuery(req.url ?? '');
    } catch (err) {
      sendError(res, err);
      return;
    }
    const { follow, ...range } = query;
    if (!follow) {
      if (!fanout) sendJson(res, 200, { app, lines: logs.lines(app, range) });
      else sendJson(res, 200, { app, ...(await fanout.lines(app, logs, range)) });
      return;
    }
    await this.#follow(req, res, app, logs, range, fanout);
  }

  /** Ends every open stream (for a graceful shutdown). */
  closeAll(): void {
    for (const res of [...this.#open]) res.end();
    this.#open.clear();
  }

  async #follow(
    req: IncomingMessage,
    res: ServerResponse,
    app: string,
    logs: AppLogSource,
    range: { since?: number; limit?: number },
    fanout: LogFanout | undefined,
  ): Promise<void> {
    if (req.socket.destroyed) return;
    // The backlog is written at once, whatever its size (a few replicas' kept lines pass 1 MiB);
    // after it, a client still that far behind when more comes is dropped (measured before each
    // write, so one large write is not taken for falling behind).
    let backlog = true;
    const write = (chunk: string): void => {
      if (res.destroyed || res.writableEnded) return;
      if (!backlog && res.writableLength > this.#maxBufferedBytes) {
        res.destroy();
        return;
      }
      res.write(chunk);
    };
    const send = (line: AppLogLine): void => write(`event: line\ndata: ${JSON.stringify(line)}\n\n`);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    let unfollow = (): void => undefined;
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), this.#heartbeatMs);
    heartbeat.unref();
    this.#open.add(res);
    res.once('close', () => {
      clearInterval(heartbeat);
      unfollow();
      this.#open.delete(res);
    });
    if (fanout) {
      const all = fanout.follow(app, logs, range, {
        line: send,
        unreachable: (replica, reason) =>
          write(`event: unreachable\ndata: ${JSON.stringify({ replica, reason })}\n\n`),
      });
      unfollow = () => all.close();
      await all.ready;
    } else {
      // Kept lines and new ones in one synchronous step: none logged in between is lost or doubled.
      for (const line of logs.lines(app, range)) send(line);
      unfollow = logs.follow(app, send);
    }
    // Says the backlog is complete, for a client waiting to follow from here on.
    write(': following\n\n');
    backlog = false;
  }
}

function parseQuery(url: string): { since?: number; limit?: number; follow: boolean } {
  const params = new URL(url, 'http://x').searchParams;
  const out: { since?: number; limit?: number; follow: boolean } = {
    follow: ['1', 'true'].includes(params.get('follow') ?? ''),
  };
  const since = params.get('since');
  if (since !== null) {
    const ms = parseDuration(since);
    if (ms === undefined) {
      throw new AppvisorError('REQUEST_INVALID', {
        detail: `since=${since} is not a duration; write e.g. since=30s, since=10m or since=1h`,
      });
    }
    out.since = Date.now() - ms;
  }
  const limit = params.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!/^\d+$/.test(limit) || n < 1 || n > MAX_LIMIT) {
      throw new AppvisorError('REQUEST_INVALID', {
        detail: `limit=${limit} must be a whole number from 1 to ${MAX_LIMIT}`,
      });
    }
    out.limit = n;
  }
  return out;
}
