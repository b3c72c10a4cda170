/**
 * The logs route's follow stream and slow clients: the backlog goes out whole however large it
 * is; after it, a client that stops reading is dropped rather than buffered without end.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LogStreams } from '../../src/admin/logs-api.js';
import type { AppLogSource } from '../../src/admin/types.js';
import type { AppLogLine } from '../../src/serve/app-logs.js';

/** A line of about 2 KiB. */
function line(i: number): AppLogLine {
  return {
    time: 1_700_000_000_000 + i,
    level: 30,
    msg: `line ${i} ${'x'.repeat(2000)}`,
    app: 'blog',
    replica: 'r1',
  };
}

/** A source with `kept` lines and a way to log new ones. */
function source(kept: number): AppLogSource & { log(l: AppLogLine): void; followers: number } {
  const followers = new Set<(l: AppLogLine) => void>();
  const lines = Array.from({ length: kept }, (_, i) => line(i));
  return {
    lines: () => lines,
    follow(_app, deliver) {
      followers.add(deliver);
      return () => followers.delete(deliver);
    },
    log(l) {
      for (const deliver of followers) deliver(l);
    },
    get followers() {
      return followers.size;
    },
  };
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function serve(streams: LogStreams, logs: AppLogSource): Promise<number> {
  server = createServer((req, res) => void streams.answer(req, res, 'blog', logs, undefined));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('logs?follow=1 and slow clients', () => {
  it('sends a backlog far larger than the slow-client limit whole', async () => {
    // 10,000 lines of 2 KiB: 20 MiB, well past what a socket takes at once, against a 64 KiB limit.
    const streams = new LogStreams({ maxBufferedBytes: 64 * 1024 });
    const port = await serve(streams, source(10_000));
    const res = await fetch(`http://127.0.0.1:${port}/logs?follow=1&limit=10000`);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!text.includes(': following\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    await reader.cancel();
    expect(text.match(/^event: line$/gm)?.length).toBe(10_000);
    expect(text).toContain('"msg":"line 9999 ');
  });

  it('drops a client that stops reading once it is that far behind on new lines', async () => {
    const streams = new LogStreams({ maxBufferedBytes: 64 * 1024 });
    const logs = source(0);
    const port = await serve(streams, logs);
    // A raw client that sends the request and then never reads.
    const socket = net.connect(port, '127.0.0.1');
    socket.pause();
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`GET /logs?follow=1 HTTP/1.1\r\nhost: x\r\n\r\n`);
    await expect.poll(() => logs.followers).toBe(1);
    // 40 MiB of new lines: the kernel's buffers fill, then the stream's, then the client goes.
    for (let i = 0; i < 20_000 && logs.followers > 0; i++) {
      logs.log(line(i));
      if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await expect.poll(() => logs.followers).toBe(0);
    socket.destroy();
  });
});
