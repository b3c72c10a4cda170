import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StatusEvent } from '../runtime/view.js';
import type { AdminBackend } from './types.js';

/**
 * The `GET /_supervisor/api/events` stream (Server-Sent Events).
 *
 * On connect: `event: snapshot` with the full app list (`AppView[]`); then one `event: status`
 * per status change (`StatusEvent`), each with an `id` counting up from the snapshot's; a
 * `: heartbeat` comment keeps idle proxies from closing the stream.
 *
 * Authentication is the same `Authorization: Bearer` header as the rest of the admin API. A
 * browser's `EventSource` cannot send that header, and the token must never be put in a URL
 * (it would end up in logs and history), so the admin UI reads this stream with `fetch()` and
 * `response.body.getReader()`, parsing the `event:`/`data:`/`id:` lines itself and reconnecting
 * on its own; each reconnect starts with a fresh snapshot, so no `Last-Event-ID` is needed.
 */
export interface EventStreamOptions {
  /** Interval of the heartbeat comment. @default 15000 */
  readonly heartbeatMs?: number;
  /**
   * A client this far behind (bytes still buffered when the next event comes) is dropped rather
   * than buffered without end. @default 1 MiB
   */
  readonly maxBufferedBytes?: number;
}

/**
 * Open event streams. One listener on the backend fans out to every client, so any number of
 * open admin pages costs one listener (no MaxListeners warning), removed with the last client.
 */
export class EventStreams {
  readonly #clients = new Map<ServerResponse, (event: StatusEvent) => void>();
  readonly #backend: Pick<AdminBackend, 'listApps' | 'events'>;
  readonly #heartbeatMs: number;
  readonly #maxBufferedBytes: number;
  readonly #onStatus = (event: StatusEvent): void => {
    for (const deliver of this.#clients.values()) deliver(event);
  };

  constructor(backend: Pick<AdminBackend, 'listApps' | 'events'>, options: EventStreamOptions = {}) {
    this.#backend = backend;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  }

  /** Number of streams currently open. */
  get size(): number {
    return this.#clients.size;
  }

  /** Serves one stream until the client goes away or `closeAll()` is called. */
  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.socket.destroyed) return;
    let nextId = 1;
    let pending: StatusEvent[] | undefined = [];
    const write = (chunk: string): void => {
      if (res.destroyed || res.writableEnded) return;
      // Measured before the write: a client still that far behind when more comes is dropped,
      // while one large write (the snapshot of 10,000 apps is megabytes) is not falling behind.
      if (res.writableLength > this.#maxBufferedBytes) {
        res.destroy();
        return;
      }
      res.write(chunk);
    };
    const send = (event: string, data: unknown): void => {
      write(`id: ${nextId++}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    // Subscribed before the snapshot is read, so a change in between is sent after it, not lost.
    this.#add(res, (event) => {
      if (pending !== undefined) pending.push(event);
      else send('status', event);
    });
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), this.#heartbeatMs);
    heartbeat.unref();
    res.once('close', () => {
      clearInterval(heartbeat);
      this.#remove(res);
    });

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    res.flushHeaders();
    try {
      const apps = await this.#backend.listApps();
      send('snapshot', apps);
    } catch {
      res.destroy();
      return;
    }
    const queued = pending;
    pending = undefined;
    for (const event of queued) send('status', event);
  }

  /** Ends every open stream (for a graceful shutdown). */
  closeAll(): void {
    for (const res of [...this.#clients.keys()]) {
      res.end();
      this.#remove(res);
    }
  }

  #add(res: ServerResponse, deliver: (event: StatusEvent) => void): void {
    if (this.#clients.size === 0) this.#backend.events.on('status', this.#onStatus);
    this.#clients.set(res, deliver);
  }

  #remove(res: ServerResponse): void {
    if (!this.#clients.delete(res)) return;
    if (this.#clients.size === 0) this.#backend.events.off('status', this.#onStatus);
  }
}
