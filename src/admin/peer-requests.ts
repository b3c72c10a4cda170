/**
 * Asking every other live replica the same GET, for answers that hold what all of them know (the
 * logs and the figures of every replica, SPEC §8.7): each is asked for its own part only (the
 * request is marked forwarded, as forward.ts marks the leader's work, so a replica asked never
 * asks on), with the caller's token and a short timeout. A replica that does not answer, or
 * answers something else than asked for, is named in `unreachable` instead of failing the whole
 * answer.
 */
import type { IncomingMessage } from 'node:http';
import { urlUnder } from '../http/url-under.js';
import { FORWARDED_HEADER, forwarded } from './forward.js';
import type { AdminBackend } from './types.js';

/** Another live replica's admin API. */
export interface Peer {
  readonly id: string;
  readonly url: string;
}

export interface PeerRequestOptions {
  /** The other live replicas with an admin URL, read afresh on each call. */
  readonly peers: () => Promise<readonly Peer[]>;
  /** The caller's `authorization` header, passed on as it came. */
  readonly authorization: string | undefined;
  /** How long a replica may take to answer. @default 2000 */
  readonly timeoutMs?: number;
}

/** What the replicas that answered said, in the order they were listed, and those that did not. */
export interface PeerAnswers<T> {
  readonly answers: { readonly replica: string; readonly body: T }[];
  readonly unreachable: string[];
}

export const DEFAULT_PEER_TIMEOUT_MS = 2_000;

/**
 * The other replicas to ask for a request: none for one another replica passed on (it wants this
 * replica's own part), nor where the backend knows no other replicas.
 */
export function peerRequestsFor(
  req: IncomingMessage,
  backend: Pick<AdminBackend, 'livePeers'>,
): PeerRequests | undefined {
  const peers = backend.livePeers;
  if (forwarded(req) || !peers) return undefined;
  return new PeerRequests({ peers: () => peers.call(backend), authorization: req.headers.authorization });
}

export class PeerRequests {
  readonly authorization: string | undefined;
  readonly timeoutMs: number;
  readonly #peers: () => Promise<readonly Peer[]>;

  constructor(options: PeerRequestOptions) {
    this.#peers = options.peers;
    this.authorization = options.authorization;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_PEER_TIMEOUT_MS;
  }

  /** The other live replicas now. */
  peers(): Promise<readonly Peer[]> {
    return this.#peers();
  }

  /**
   * GETs `path` (relative to the admin URL, e.g. `_supervisor/api/figures?apps=a`) of every other
   * live replica at once; `accept` takes a 200's JSON body, or undefined for one that is not what
   * was asked for (that replica then counts as unreachable).
   */
  async getAll<T>(path: string, accept: (body: unknown) => T | undefined): Promise<PeerAnswers<T>> {
    const peers = await this.#peers();
    const settled = await Promise.allSettled(peers.map((peer) => this.get(peer, path, accept)));
    const answers: { replica: string; body: T }[] = [];
    const unreachable: string[] = [];
    settled.forEach((result, i) => {
      const replica = peers[i]!.id;
      if (result.status === 'fulfilled') answers.push({ replica, body: result.value });
      else unreachable.push(replica);
    });
    return { answers, unreachable };
  }

  /** GETs `path` of one replica; rejects when it does not answer in time or not as `accept` wants. */
  async get<T>(peer: Peer, path: string, accept: (body: unknown) => T | undefined): Promise<T> {
    const res = await fetch(peerUrl(peer, path), {
      headers: peerHeaders(this.authorization, 'application/json'),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const body: unknown = await res.json().catch(() => undefined);
    const value = res.status === 200 ? accept(body) : undefined;
    if (value === undefined) throw new Error(`replica ${peer.id} answered HTTP ${res.status}`);
    return value;
  }
}

/** `path` (relative, no leading slash) on the peer's admin API, under its URL's own path. */
export function peerUrl(peer: Peer, path: string): URL {
  return urlUnder(peer.url, path);
}

/** The headers of a request to a peer: marked forwarded, with the caller's token. */
export function peerHeaders(authorization: string | undefined, accept: string): Record<string, string> {
  return {
    [FORWARDED_HEADER]: '1',
    accept,
    ...(authorization !== undefined ? { authorization } : {}),
  };
}
