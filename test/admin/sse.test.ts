import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSupervisorHandler, type SupervisorRoutes } from '../../src/admin/handler.js';
import { createMetrics } from '../../src/admin/metrics.js';
import type { AppView, StatusEvent } from '../../src/runtime/view.js';
import { appView, FakeBackend, listen, MemoryLog } from './fakes.js';

const TOKEN = 'sse-admin-token-0123456789abcdef';
const HEARTBEAT_MS = 25;

interface Frame {
  readonly id?: string;
  readonly event?: string;
  readonly data?: string;
  readonly comment?: string;
}

/**
 * Reads an SSE stream the way the admin UI does: fetch() with the Authorization header and
 * the body's reader, parsing frames by hand.
 */
class EventReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = '';

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  /** The next frame; undefined once the stream ends. */
  async next(): Promise<Frame | undefined> {
    for (;;) {
      const end = this.#buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const frame: Record<string, string> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) frame.comment = line.slice(1).trim();
          else {
            const at = line.indexOf(':');
            frame[line.slice(0, at)] = line.slice(at + 1).replace(/^ /, '');
          }
        }
        return frame;
      }
      const { done, value } = await this.#reader.read();
      if (done) return undefined;
      this.#buffer += this.#decoder.decode(value, { stream: true });
    }
  }

  /** The next frame that is not a heartbeat. */
  async nextEvent(): Promise<Frame | undefined> {
    for (;;) {
      const frame = await this.next();
      if (frame?.comment === undefined) return frame;
    }
  }
}

let backend: FakeBackend;
let handler: SupervisorRoutes;
let srv: Awaited<ReturnType<typeof listen>>;
const clients = new Set<AbortController>();

beforeAll(async () => {
  backend = new FakeBackend([]);
  handler = createSupervisorHandler({
    backend,
    token: TOKEN,
    metrics: createMetrics(undefined, { defaultMetrics: false }),
    log: new MemoryLog(),
    events: { heartbeatMs: HEARTBEAT_MS },
  });
  srv = await listen(handler);
});
afterAll(async () => {
  handler.close();
  await srv.close();
});
beforeEach(() => {
  backend.apps.clear();
  backend.apps.set('blog', appView('blog', { status: 'running' }));
  backend.apps.set('shop', appView('shop'));
  backend.listOverride = undefined;
});
// Every stream a test opened is gone once its client is: no listener is left behind.
afterEach(async () => {
  for (const client of clients) client.abort();
  clients.clear();
  await vi.waitFor(() => expect(backend.events.listenerCount('status')).toBe(0), { timeout: 5000 });
});

/** Opens a stream; `abort()` is the client going away (afterEach aborts any left open). */
async function connect(): Promise<{ res: Response; events: EventReader; abort(): void }> {
  const controller = new AbortController();
  clients.add(controller);
  const res = await fetch(`${srv.base}/_supervisor/api/events`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  return { res, events: new EventReader(res.body!), abort: () => controller.abort() };
}

const statusEvent = (app: string, status: StatusEvent['status']): StatusEvent => ({
  app,
  status,
  previous: 'stopped',
  error: null,
  at: '2024-01-01T00:00:00.000Z',
});

describe('GET /_supervisor/api/events', () => {
  it('sends a snapshot, then status events with increasing ids', async () => {
    const { res, events, abort } = await connect();
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-accel-buffering')).toBe('no');

    const snapshot = await events.nextEvent();
    expect(snapshot).toMatchObject({ event: 'snapshot', id: '1' });
    expect(JSON.parse(snapshot!.data!)).toEqual([...backend.apps.values()]);

    const first = statusEvent('shop', 'starting');
    const second = statusEvent('shop', 'running');
    backend.events.emit('status', first);
    backend.events.emit('status', second);
    expect(await events.nextEvent()).toEqual({ id: '2', event: 'status', data: JSON.stringify(first) });
    expect(await events.nextEvent()).toEqual({ id: '3', event: 'status', data: JSON.stringify(second) });
    abort();
  });

  it('sends a snapshot bigger than the slow-client limit whole (10,000 apps), then status events', async () => {
    backend.apps.clear();
    for (let i = 0; i < 10_000; i++) {
      const name = `app-${String(i).padStart(5, '0')}`;
      backend.apps.set(name, appView(name, { displayName: `App number ${i} of a large fleet` }));
    }
    const { events, abort } = await connect();
    const snapshot = await events.nextEvent();
    expect(snapshot?.event).toBe('snapshot');
    // Megabytes at once: more than the 1 MiB a client may fall behind by.
    expect(snapshot!.data!.length).toBeGreaterThan(1024 * 1024);
    expect(JSON.parse(snapshot!.data!)).toHaveLength(10_000);
    const change = statusEvent('app-09999', 'starting');
    backend.events.emit('status', change);
    expect(await events.nextEvent()).toEqual({ id: '2', event: 'status', data: JSON.stringify(change) });
    abort();
  });

  it('a change that happens while the snapshot is read comes after the snapshot', async () => {
    let release!: (apps: AppView[]) => void;
    backend.listOverride = () =>
      new Promise<AppView[]>((resolve) => {
        release = resolve;
      });
    const { events, abort } = await connect();
    await vi.waitFor(() => expect(release).toBeDefined());
    const change = statusEvent('blog', 'stopping');
    backend.events.emit('status', change);
    release([appView('blog', { status: 'running' })]);
    expect(await events.nextEvent()).toMatchObject({ event: 'snapshot', id: '1' });
    expect(await events.nextEvent()).toEqual({ id: '2', event: 'status', data: JSON.stringify(change) });
    abort();
  });

  it('sends heartbeat comments while idle', async () => {
    const { events, abort } = await connect();
    expect(await events.nextEvent()).toMatchObject({ event: 'snapshot' });
    expect(await events.next()).toEqual({ comment: 'heartbeat' });
    abort();
  });

  it('removes its listener when the client goes away (20 connects, no leak)', async () => {
    for (let i = 0; i < 20; i++) {
      const { events, abort } = await connect();
      expect(await events.nextEvent()).toMatchObject({ event: 'snapshot' });
      expect(backend.events.listenerCount('status')).toBeGreaterThan(0);
      abort();
    }
    await vi.waitFor(() => expect(backend.events.listenerCount('status')).toBe(0), { timeout: 5000 });
    // Events after the clients left go nowhere and break nothing.
    backend.events.emit('status', statusEvent('blog', 'stopped'));
  });

  it('twelve clients at once share one backend listener and each gets every event', async () => {
    const streams = await Promise.all(Array.from({ length: 12 }, () => connect()));
    for (const { events } of streams) expect(await events.nextEvent()).toMatchObject({ event: 'snapshot' });
    expect(backend.events.listenerCount('status')).toBe(1);
    const change = statusEvent('shop', 'running');
    backend.events.emit('status', change);
    for (const { events } of streams) {
      expect(await events.nextEvent()).toEqual({ id: '2', event: 'status', data: JSON.stringify(change) });
    }
  });

  it('close() ends open streams so the server can shut down', async () => {
    const { events } = await connect();
    expect(await events.nextEvent()).toMatchObject({ event: 'snapshot' });
    expect(backend.events.listenerCount('status')).toBe(1);
    handler.close();
    expect(await events.nextEvent()).toBeUndefined();
  });

  it('a failing snapshot drops the connection instead of hanging', async () => {
    backend.listOverride = () => Promise.reject(new Error('store down'));
    const { events } = await connect();
    await expect(events.next()).rejects.toThrow();
  });
});
