/**
 * The HTTP side of `serve`: the gateway in front of the apps and, under `/_supervisor`, the
 * admin API, SSE events, metrics and UI.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createSupervisorHandler, SUPERVISOR_PREFIX } from '../admin/handler.js';
import { createMetrics } from '../admin/metrics.js';
import { resolveAdminToken } from '../admin/token.js';
import type { Settings } from '../config/types.js';
import { createGateway } from '../gateway/server.js';
import type { GatewayApps } from '../gateway/types.js';
import type { Runtime } from '../runtime/runtime.js';
import { type AdminBackendDeps, createAdminBackend } from './admin-backend.js';
import { AppFigures } from './app-figures.js';
import { startFigureSampler } from './figure-sampler.js';

export interface HttpSurfaceOptions {
  readonly settings: Settings;
  readonly env: NodeJS.ProcessEnv | undefined;
  readonly log: Logger;
  readonly runtime: Runtime;
  readonly startTimeoutMs: number;
  /** What the admin API reads and asks for. */
  readonly backend: Omit<AdminBackendDeps, 'runtime' | 'log' | 'figures'>;
}

export interface HttpSurface {
  /** e.g. http://127.0.0.1:13000 */
  readonly url: string;
  readonly address: AddressInfo;
  /** The admin token as this replica knows it (see `AdminToken.token`). */
  readonly adminToken: string | undefined;
  readonly adminTokenFile: string | undefined;
  /** Stops accepting, drains requests for up to `graceMs`, ends the SSE streams. */
  close(graceMs: number): Promise<void>;
}

/** Builds the admin surface and the gateway and listens; resolves once it accepts connections. */
export async function startHttpSurface(options: HttpSurfaceOptions): Promise<HttpSurface> {
  const { settings, log, runtime } = options;
  // Each app's last hour, as the gateway sees its traffic (and isolated apps' memory).
  const figures = new AppFigures({ log });
  figures.start();
  const sampler = startFigureSampler({ figures, runtime, events: options.backend.events });
  const backend = createAdminBackend({ ...options.backend, runtime, log, figures: sampler.source });
  const metrics = createMetrics(backend, {
    live: figures,
    ...(settings.metrics ? { maxAppLabels: settings.metrics.maxAppLabels } : {}),
  });
  let supervisorRoutes: ReturnType<typeof createSupervisorHandler> | undefined;
  try {
    const { store } = options.backend;
    const { token, source, file } = await resolveAdminToken({
      ...(options.env ? { env: options.env } : {}),
      dataDir: settings.dataDir,
      store,
      log,
    });
    // The environment's token is this replica's own; every other token is checked against the
    // store, so a deleted one stops working here too.
    const routes = createSupervisorHandler({
      backend,
      ...(source === 'env' ? { token: token! } : {}),
      tokens: store,
      metrics,
      log,
    });
    supervisorRoutes = routes;
    const apps: GatewayApps = {
      has: (name) => runtime.has(name),
      routed: () => options.backend.ready(),
      appForDomain: (host) => runtime.appForDomain(host),
      ready: (name) => runtime.ready(name),
      readyMain: () => runtime.readyMain(),
      acquire: (name) => runtime.acquire(name),
      acquireMain: () => runtime.acquireMain(),
      onRequest: (app, status, ms) => metrics.observeRequest(app, status, ms),
      opened: (name) => runtime.opened(name),
      closed: (name) => runtime.closed(name),
    };
    const gateway = createGateway({
      apps,
      // The gateway hands over the path after `/_supervisor`; the admin routes match the full path.
      supervisor: (req, res, path) => routes(req, res, SUPERVISOR_PREFIX + path),
      log,
      startTimeoutMs: options.startTimeoutMs,
      supervisorHosts: settings.admin?.hosts,
      traffic: figures,
    });
    const address = await gateway.listen(settings.listen.port, settings.listen.host);
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    log.info({ url }, 'appvisor listening');
    return {
      url,
      address,
      adminToken: token,
      adminTokenFile: file,
      async close(graceMs) {
        routes.close();
        await gateway.close({ graceMs });
        sampler.stop();
        figures.stop();
        metrics.close();
      },
    };
  } catch (err) {
    supervisorRoutes?.close();
    sampler.stop();
    figures.stop();
    metrics.close();
    throw err;
  }
}
