/**
 * The logs fan-out (src/admin/logs-fanout.ts) against small real HTTP servers standing in for the
 * other replicas: what it asks them (their own lines only, with the caller's token), how it merges
 * (by time, stable, the limit after merging), a replica that does not answer, and following:
 * the merged backlog first, live lines after, a replica that joins, one whose stream ends.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FORWARDED_HEADER } from '../../src/admin/forward.js';
import { LogFanout, mergeByTime } from '../../src/admin/logs-fanout.js';
import { type Peer, PeerRequests } from '../../src/admin/peer-requests.js';
import type { AppLogLine } from '../../src/serve/app-logs.js';
import { waitFor } from '../serve/harness.js';

const line = (replica: string, time: number, msg = `${replica}@${time}`): AppLogLine => ({
  time,
  level: 30,
  msg,
  app: 'crm',
  replica,
});

/** A local source holding `lines`, whose `emit` logs a new one. */
function localSource(lines: AppLogLine[]) {
  const followers = new Set<(l: AppLogLine) => void>();
  return {
    lines: (_app: string, q: { since?: number; limit?: number }) => {
      const since = q.since;
      const kept = since === undefined ? lines : lines.filter((l) => l.time >= since);
      return q.limit === undefined ? kept : kept.slice(-q.limit);
    },
    follow: (_app: string, deliver: (l: AppLogLine) => void) => {
      followers.add(deliver);
      return () => followers.delete(deliver);
    },
    emit: (l: AppLogLine) => {
      for (const f of followers) f(l);
    },
  };
}

interface FakePeer extends Peer {
  readonly requests: http.IncomingMessage[];
  /** Sends a live line to every open follow stream. */
  push(l: AppLogLine): void;
  /** Ends every open follow stream. */
  endStreams(): void;
  close(): Promise<void>;
}

const servers: FakePeer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A replica's logs route: its `lines` (or, `hang`, no answer at all). */
async function fakePeer(id: string, lines: AppLogLine[], opts: { hang?: boolean } = {}): Promise<FakePeer> {
  const requests: http.IncomingMessage[] = [];
  const streams = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    requests.push(req);
    if (opts.hang) return;
    const url = new URL(req.url ?? '/', 'http://x');
    const limit = url.searchParams.get('limit');
    // `since` comes as a duration back from now in ms (`since=1234ms`), as the route takes it.
    const since = url.searchParams.get('since');
    const after =
      since === null ? lines : lines.filter((l) => l.time >= Date.now() - Number.parseInt(since, 10));
    const kept = limit === null ? after : after.slice(-Number(limit));
    if (url.searchParams.get('follow') !== '1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ app: 'crm', lines: kept }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const l of kept) res.write(`event: line\ndata: ${JSON.stringify(l)}\n\n`);
    res.write(': following\n\n');
    streams.add(res);
    res.on('close', () => streams.delete(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const peer: FakePeer = {
    id,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    push: (l) => {
      for (const res of streams) res.write(`event: line\ndata: ${JSON.stringify(l)}\n\n`);
    },
    endStreams: () => {
      for (const res of streams) res.end();
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(peer);
  return peer;
}

describe('mergeByTime', () => {
  it('orders by time and keeps the order of the lists at equal times', () => {
    const a = [line('a', 1), line('a', 3, 'a-3'), line('a', 5)];
    const b = [line('b', 2), line('b', 3, 'b-3'), line('b', 4)];
    expect(mergeByTime([a, b]).map((l) => l.msg)).toEqual(['a@1', 'b@2', 'a-3', 'b-3', 'b@4', 'a@5']);
    expect(mergeByTime([b, a]).map((l) => l.msg)).toEqual(['a@1', 'b@2', 'b-3', 'a-3', 'b@4', 'a@5']);
  });
});

describe('LogFanout.lines', () => {
  it('merges every replica’s lines, applies the limit after merging, and names one that does not answer', async () => {
    const b = await fakePeer('b', [line('b', 20), line('b', 40)]);
    const silent = await fakePeer('c', [], { hang: true });
    const fanout = new LogFanout(
      new PeerRequests({
        peers: async () => [b, silent],
        authorization: 'Bearer the-callers-token',
        timeoutMs: 300,
      }),
    );
    const local = localSource([line('a', 10), line('a', 30)]);
    const all = await fanout.lines('crm', local, {});
    expect(all.lines.map((l) => l.msg)).toEqual(['a@10', 'b@20', 'a@30', 'b@40']);
    expect(all.unreachable).toEqual(['c']);
    // Asked for its own lines only, with the caller's token.
    expect(b.requests[0]!.headers[FORWARDED_HEADER]).toBe('1');
    expect(b.requests[0]!.headers.authorization).toBe('Bearer the-callers-token');
    expect(b.requests[0]!.url).toBe('/_supervisor/api/apps/crm/logs');
    const last = await fanout.lines('crm', local, { limit: 3 });
    expect(last.lines.map((l) => l.msg)).toEqual(['b@20', 'a@30', 'b@40']);
    expect(b.requests[1]!.url).toBe('/_supervisor/api/apps/crm/logs?limit=3');
  });
});

describe('LogFanout.follow', () => {
  it('sends the merged backlog first, then live lines from every replica, and picks up one that joins', async () => {
    const b = await fakePeer('b', [line('b', 20)]);
    const late = await fakePeer('c', [line('c', 1), line('c', Date.now() + 60_000, 'c-new')]);
    let peers: Peer[] = [b];
    const fanout = new LogFanout(
      new PeerRequests({ peers: async () => peers, authorization: undefined }),
      50,
    );
    const local = localSource([line('a', 10), line('a', 30)]);
    const got: string[] = [];
    const gone: string[] = [];
    const all = fanout.follow(
      'crm',
      local,
      {},
      {
        line: (l) => got.push(l.msg),
        unreachable: (id) => gone.push(id),
      },
    );
    // Logged here while the backlogs were collected: held until the merged backlog is out.
    local.emit(line('a', 50, 'a-live'));
    await all.ready;
    expect(got).toEqual(['a@10', 'b@20', 'a@30', 'a-live']);
    b.push(line('b', 60, 'b-live'));
    await waitFor(() => got.includes('b-live'), 'the live line of b', 5_000);
    // A replica that joins is subscribed for its lines since the stream opened, not older ones.
    peers = [b, late];
    await waitFor(() => got.includes('c-new'), 'the joining replica', 5_000);
    expect(got).not.toContain('c@1');
    expect(late.requests[0]!.url).toMatch(/^\/_supervisor\/api\/apps\/crm\/logs\?since=\d+ms&follow=1$/);
    // A replica whose stream ends is named once.
    b.endStreams();
    await waitFor(() => gone.length > 0, 'the ended stream', 5_000);
    expect(gone).toEqual(['b']);
    all.close();
    local.emit(line('a', 70, 'after-close'));
    expect(got).not.toContain('after-close');
  });
});
