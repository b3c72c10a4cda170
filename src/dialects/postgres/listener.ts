/**
 * LISTEN on a dedicated connection (a pooled one cannot listen: NOTIFY reaches the session that
 * asked). It reconnects by itself with a growing pause; whatever was sent while it was away is
 * lost, which is why the caller also polls and polls once more whenever the listener (re)connects.
 */
import pg from 'pg';
import type { ChangeListener, ListenHandlers } from '../types.js';
import type { DatabaseUrl } from '../url.js';

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

export function listen(url: DatabaseUrl, channel: string, handlers: ListenHandlers): ChangeListener {
  let closed = false;
  let client: pg.Client | undefined;
  let retryMs = FIRST_RETRY_MS;
  let retryTimer: NodeJS.Timeout | undefined;

  const retry = (err: Error): void => {
    if (closed) return;
    const dead = client;
    client = undefined;
    void dead?.end().catch(() => undefined);
    handlers.onState?.(false, err);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, retryMs);
    retryTimer.unref();
    retryMs = Math.min(MAX_RETRY_MS, retryMs * 2);
  };

  const connect = (): void => {
    if (closed) return;
    const c = new pg.Client({
      connectionString: url.url,
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
      application_name: 'appvisor change listener',
    });
    client = c;
    let failed = false;
    const fail = (err: Error): void => {
      if (failed || client !== c) return;
      failed = true;
      retry(err);
    };
    // Unhandled, an 'error' on an idle client would crash the process.
    c.on('error', fail);
    c.on('end', () => fail(new Error('the listener connection closed')));
    c.on('notification', (msg) => {
      if (msg.channel === channel && msg.payload !== undefined) handlers.onPayload(msg.payload);
    });
    c.connect()
      .then(() => c.query(`LISTEN ${c.escapeIdentifier(channel)}`))
      .then(() => {
        if (closed || client !== c) return;
        retryMs = FIRST_RETRY_MS;
        handlers.onState?.(true);
      })
      .catch((err: Error) => fail(err));
  };

  connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
