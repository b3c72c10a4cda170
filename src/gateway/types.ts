import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** What the gateway needs to hand a request to an app that is ready. */
export interface ReadyApp {
  readonly name: string;
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  readonly upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/**
 * The gateway's view of the runtime. Routing only: no header or query parameter selects an
 * app; the gateway asks this object by path name or exact Host.
 */
export interface GatewayApps {
  /** True if `name` is a known, routable sub-app (has a valid manifest, not orphaned). */
  has(name: string): boolean;
  /** The app that owns this exact host name (lower-cased, port stripped), if any. */
  appForDomain(host: string): string | undefined;
  /**
   * Resolves when the app can take requests, starting it if needed (single-flight: concurrent
   * callers share one start). Rejects with an AppvisorError: APP_NOT_FOUND, APP_DISABLED,
   * APP_NEEDS_UPGRADE, APP_ERROR, APP_STARTING (start still running after `timeoutMs`).
   */
  acquire(name: string, opts: { readonly timeoutMs: number }): Promise<ReadyApp>;
  /** The main app (served at `/` and for unknown hosts). */
  acquireMain(opts: { readonly timeoutMs: number }): Promise<ReadyApp>;
  /** Counts a request for metrics. */
  onRequest?(app: string, status: number, durationMs: number): void;
}

/** The supervisor's own routes under /_supervisor/. */
export type SupervisorHandler = (req: IncomingMessage, res: ServerResponse, path: string) => void;
