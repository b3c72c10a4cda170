/**
 * One replica's answer to `GET …/apps/<name>/logs` with the lines of every live replica (SPEC
 * §8.7): the other live replicas are asked for their own lines (peer-requests.ts: forwarded, with
 * the caller's token and a short timeout); the lines are merged by time, stable (this replica's
 * first at equal times), and the limit applies to the merged lines. A replica that does not
 * answer is named in `unreachable` instead of failing the whole answer.
 *
 * Following (`follow=1`) subscribes to each live replica's own stream. The backlogs are merged
 * by time before anything is sent; after that, lines are sent as they arrive from any replica.
 * The list of live replicas is read again every few seconds: a replica that joined, or one that
 * answers again after it dropped out, is subscribed then, for its lines from the stream's start
 * (or after the last one it sent) on. A replica whose stream ends is named in an
 * `event: unreachable`, once until it answers again.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { messageOf } from '../errors.js';
import { SseMessages } from '../http/sse-messages.js';
import type { AppLogLine } from '../serve/app-logs.js';
import { type Peer, type PeerRequests, peerHeaders, peerRequestsFor, peerUrl } from './peer-requests.js';
import type { AdminBackend, AppLogSource } from './types.js';

/** The range asked for: lines at or after `since` (ms since the epoch), the last `limit` of them. */
export interface LogRange {
  readonly since?: number;
  readonly limit?: number;
}

/** The merged lines, and the replicas that did not answer. */
export interface FannedOutLines {
  readonly lines: AppLogLine[];
  readonly unreachable: string[];
}

export interface FollowHandlers {
  /** A line to send, from any replica (the merged backlog first, oldest first). */
  readonly line: (line: AppLogLine) => void;
  /** A replica that did not answer or whose stream ended. */
  readonly unreachable: (replica: string, reason: string) => void;
}

export interface FollowAll {
  /** Resolves once the merged backlog was handed to `line` (then `line` gets each new line). */
  readonly ready: Promise<void>;
  /** Ends every subscription. */
  close(): void;
}

const DEFAULT_RESCAN_MS = 5_000;

/**
 * The fan-out for a logs request: none for one another replica passed on (it wants this
 * replica's own lines), nor where the backend knows no other replicas.
 */
export function logFanoutFor(
  req: IncomingMessage,
  backend: Pick<AdminBackend, 'livePeers'>,
): LogFanout | undefined {
  const peers = peerRequestsFor(req, backend);
  return peers && new LogFanout(peers);
}

/** Lists merged by time; stable, so at equal times the earlier list's line comes first. */
export function mergeByTime(lists: readonly (readonly AppLogLine[])[]): AppLogLine[] {
  return lists.flat().sort((a, b) => a.time - b.time);
}

/** The last `limit` lines (all of them without a limit). */
function lastOf(lines: AppLogLine[], limit: number | undefined): AppLogLine[] {
  return limit === undefined ? lines : lines.slice(Math.max(0, lines.length - limit));
}

export class LogFanout {
  readonly #peers: PeerRequests;
  readonly #rescanMs: number;

  /**
   * @param peers the other live replicas, the caller's token and how long each may take to
   *   answer (a follow: to send its backlog)
   * @param rescanMs how often a follow reads the list of live replicas again
   */
  constructor(peers: PeerRequests, rescanMs = DEFAULT_RESCAN_MS) {
    this.#peers = peers;
    this.#rescanMs = rescanMs;
  }

  /** This replica's lines of `app` and every other live replica's, merged. */
  async lines(app: string, local: AppLogSource, range: LogRange): Promise<FannedOutLines> {
    const own = local.lines(app, range);
    const { answers, unreachable } = await this.#peers.getAll(logsPath(app, range, false), (body) => {
      const lines = (body as { lines?: unknown } | undefined)?.lines;
      return Array.isArray(lines) ? (lines as AppLogLine[]) : undefined;
    });
    const theirs = answers.map((a) => a.body);
    return { lines: lastOf(mergeByTime([own, ...theirs]), range.limit), unreachable };
  }

  /** Follows `app` on this replica and every other live one; see the module comment. */
  follow(app: string, local: AppLogSource, range: LogRange, to: FollowHandlers): FollowAll {
    const openedAt = Date.now();
    let closed = false;
    /** Until the merged backlog is sent, new lines wait here, in the order they came. */
    let held: AppLogLine[] | undefined = [];
    const deliver = (line: AppLogLine): void => {
      if (closed) return;
      if (held) held.push(line);
      else to.line(line);
    };
    // Kept lines and new ones in one synchronous step: none logged in between is lost or doubled.
    const ownBacklog = local.lines(app, range);
    const unfollowLocal = local.follow(app, deliver);

    const subscribed = new Map<string, PeerStream>();
    /** Peers said to be unreachable, not said again until they answer. */
    const announced = new Set<string>();
    /** The time of the last line each peer sent: a resubscription takes only later ones. */
    const lastSeen = new Map<string, number>();
    const gone = (id: string, reason: string): void => {
      subscribed.delete(id);
      if (closed || announced.has(id)) return;
      announced.add(id);
      to.unreachable(id, reason);
    };
    const subscribe = (peer: Peer, peerRange: LogRange, backlogTo?: AppLogLine[]): PeerStream => {
      const after = lastSeen.get(peer.id);
      const stream = new PeerStream(peer, app, peerRange, this.#peers.authorization, this.#peers.timeoutMs, {
        line: (line) => {
          if (after !== undefined && line.time <= after) return;
          lastSeen.set(peer.id, Math.max(lastSeen.get(peer.id) ?? 0, line.time));
          if (backlogTo && !stream.following) backlogTo.push(line);
          else deliver(line);
        },
        following: () => announced.delete(peer.id),
        gone: (reason) => gone(peer.id, reason),
      });
      subscribed.set(peer.id, stream);
      return stream;
    };

    const ready = (async () => {
      const peers = await this.#peers.peers().catch(() => []);
      const backlogs = peers.map(() => [] as AppLogLine[]);
      const streams = peers.map((peer, i) => subscribe(peer, range, backlogs[i]));
      await Promise.all(streams.map((s) => s.backlogDone));
      if (closed) return;
      for (const line of lastOf(mergeByTime([ownBacklog, ...backlogs]), range.limit)) to.line(line);
      const waiting = held ?? [];
      held = undefined;
      for (const line of waiting) to.line(line);
    })();

    const rescan = setInterval(() => {
      void this.#peers
        .peers()
        .then((peers) => {
          if (closed) return;
          for (const peer of peers) {
            if (subscribed.has(peer.id)) continue;
            // A replica new to this stream: its lines since the stream opened (or since the last it sent).
            const since = lastSeen.get(peer.id) ?? openedAt;
            subscribe(peer, { since });
          }
        })
        .catch(() => undefined);
    }, this.#rescanMs);
    rescan.unref();

    return {
      ready,
      close: () => {
        closed = true;
        clearInterval(rescan);
        unfollowLocal();
        for (const stream of subscribed.values()) stream.close();
        subscribed.clear();
      },
    };
  }
}

/** The peer's logs route, relative to its admin URL, asking for `range` (`since` as the duration back from now). */
function logsPath(app: string, range: LogRange, follow: boolean): string {
  const query = new URLSearchParams();
  if (range.since !== undefined) query.set('since', `${Math.max(0, Date.now() - range.since)}ms`);
  if (range.limit !== undefined) query.set('limit', String(range.limit));
  if (follow) query.set('follow', '1');
  const search = query.size > 0 ? `?${query}` : '';
  return `_supervisor/api/apps/${encodeURIComponent(app)}/logs${search}`;
}

interface PeerStreamEvents {
  readonly line: (line: AppLogLine) => void;
  /** The peer's backlog is complete (its `: following`). */
  readonly following: () => void;
  readonly gone: (reason: string) => void;
}

/** One peer's `follow=1` stream, read as Server-Sent Events. */
class PeerStream {
  /** Resolves when the peer's backlog is complete, or the peer failed or timed out (never rejects). */
  readonly backlogDone: Promise<void>;
  following = false;
  readonly #req: http.ClientRequest;
  readonly #backlogDone: () => void;
  #ended = false;

  constructor(
    peer: Peer,
    app: string,
    range: LogRange,
    authorization: string | undefined,
    timeoutMs: number,
    on: PeerStreamEvents,
  ) {
    let backlogDone!: () => void;
    this.backlogDone = new Promise((resolve) => {
      backlogDone = resolve;
    });
    this.#backlogDone = backlogDone;
    const end = (reason: string | undefined): void => {
      clearTimeout(timer);
      backlogDone();
      if (this.#ended) return;
      this.#ended = true;
      this.#req.destroy();
      if (reason !== undefined) on.gone(reason);
    };
    const url = peerUrl(peer, logsPath(app, range, true));
    const client = url.protocol === 'https:' ? https : http;
    const timer = setTimeout(() => end(`no answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    this.#req = client.request(
      url,
      { method: 'GET', headers: peerHeaders(authorization, 'text/event-stream') },
      (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          res.resume();
          end(`HTTP ${res.statusCode}`);
          return;
        }
        res.setEncoding('utf8');
        const messages = new SseMessages();
        res.on('data', (chunk: string) => {
          for (const { type, data, comments } of messages.push(chunk)) {
            if (comments.includes('following')) {
              clearTimeout(timer);
              this.following = true;
              on.following();
              backlogDone();
              continue;
            }
            if (type !== 'line') continue;
            try {
              on.line(JSON.parse(data) as AppLogLine);
            } catch {
              // A line that is not JSON is not one of ours: skipped.
            }
          }
        });
        res.on('end', () => end('its stream ended'));
        res.on('error', (err) => end(messageOf(err)));
      },
    );
    this.#req.on('error', (err) => end(messageOf(err)));
    this.#req.end();
  }

  close(): void {
    this.#ended = true;
    this.#backlogDone();
    this.#req.destroy();
  }
}
