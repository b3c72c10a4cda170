import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** What the gateway needs to hand a request to an app that is ready. */
export interface ReadyApp {
  readonly name: string;
  /**
   * A Node request listener. A synchronous throw, a returned promise that rejects, or an
   * 'error' emitted on `res` answers 500 `APP_HANDLER_FAILED` for that request only.
   */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => unknown;
  /** WebSocket (or other) upgrades; without it the gateway answers 404 to upgrades for this app. */
  readonly upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown;
}

/**
 * The gateway's view of the runtime. Routing only: no header or query parameter selects an
 * app; the gateway asks this object by path name or exact Host.
 */
export interface GatewayApps {
  /** True if `name` is a known, routable sub-app (has a valid manifest, not orphaned). */
  has(name: string): boolean;
  /**
   * Whether the supervisor has routed what it knows (its first reconcile is done). Before that an
   * unknown name may be an app not routed yet: it is answered 503 APP_STARTING with Retry-After
   * (a load balancer tries another replica), not 404. Absent: always.
   */
  routed?(): boolean;
  /** The app that owns this exact host name (lower-cased, port and trailing dot stripped), if any. */
  appForDomain(host: string): string | undefined;
  /**
   * Fast path: the app if it is running and can take a request right now, else undefined
   * (the gateway then calls `acquire`). Must not start anything.
   */
  ready?(name: string): ReadyApp | undefined;
  /** Fast path for the main app, as `ready`. */
  readyMain?(): ReadyApp | undefined;
  /**
   * Resolves when the app can take requests, starting it if its route's policy allows (a lazy
   * start on the first visit). Rejects with an AppvisorError: APP_NOT_FOUND, APP_DISABLED,
   * APP_STOPPED, APP_NEEDS_UPGRADE, APP_WRONG_APPLICATION, APP_ERROR, APP_STARTING. The gateway
   * shares one pending call among concurrent requests for the same app and answers APP_STARTING
   * itself once `timeoutMs` has passed (the start goes on); an implementation may also reject
   * earlier with APP_STARTING. Should be single-flight too, since the reconciler's start steps
   * start apps as well.
   */
  acquire(name: string, opts: { readonly timeoutMs: number }): Promise<ReadyApp>;
  /** The main app (served at `/` and for unknown hosts). */
  acquireMain(opts: { readonly timeoutMs: number }): Promise<ReadyApp>;
  /**
   * Counts a finished request for metrics: `app` is a sub-app name or 'main'; `status` is 499
   * when the client went away before the response was complete.
   */
  onRequest?(app: string, status: number, durationMs: number): void;
  /**
   * A request or an upgraded socket to the sub-app `app` came in (idle stop counts them: an app
   * with one open is busy). Each is followed by exactly one `closed` once it ends.
   */
  opened?(app: string): void;
  closed?(app: string): void;
}

/**
 * The supervisor's own routes under /_supervisor/. `path` is the part after `/_supervisor`,
 * without the query ('' for exactly `/_supervisor`); `req.url` is left as the client sent it.
 * May return a promise; a rejection or throw answers 500.
 */
export type SupervisorHandler = (req: IncomingMessage, res: ServerResponse, path: string) => unknown;

/**
 * Per-app traffic as the gateway sees it, for live figures (serve/app-figures.ts). Called on the
 * hot path: `opened` once per request or upgraded socket routed to an app (`main` included)
 * returns a token the gateway keeps on the response (or socket) and hands back once, to
 * `answered` for a request or `released` for an upgraded socket; undefined: not followed.
 */
export interface TrafficObserver<T extends object = object> {
  opened(app: string): T | undefined;
  /** `status` is 499 when the client went away before the response was complete. */
  answered(token: T, status: number, durationMs: number): void;
  released(token: T): void;
}
