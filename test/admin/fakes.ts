import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminBackend, AdminEventMap, AppFigureSource, PlanJson } from '../../src/admin/types.js';
import type { AppView, ClusterView, ReplicaView } from '../../src/runtime/view.js';
import type { HistoryEntry } from '../../src/state/types.js';

/** An AppView with defaults, for tests. */
export function appView(name: string, patch: Partial<AppView> = {}): AppView {
  return {
    name,
    displayName: name.toUpperCase(),
    status: 'stopped',
    enabled: true,
    startMode: 'on-first-visit',
    database: { mode: 'new-database', dialect: 'sqlite', name: `app_${name}`, schema: null },
    domains: [],
    jwt: { secret: 'own' },
    error: null,
    startedAt: null,
    lastReconciledAt: null,
    ...patch,
  };
}

/** A ReplicaView with defaults, for tests. */
export function replicaView(id: string, patch: Partial<ReplicaView> = {}): ReplicaView {
  return {
    id,
    host: 'host-a',
    pid: 100,
    leader: false,
    version: '1',
    lastSeenAt: '2026-01-01T00:00:00.000Z',
    live: true,
    self: false,
    startedAt: '2026-01-01T00:00:00.000Z',
    appvisorVersion: '0.1.0',
    application: 'sample',
    connectionBudget: 64,
    drift: [],
    apps: {},
    ...patch,
  };
}

/** An in-memory AdminBackend that records the calls that change something. */
export class FakeBackend implements AdminBackend {
  readonly events = new EventEmitter<AdminEventMap>();
  readonly apps = new Map<string, AppView>();
  readonly calls: string[] = [];
  readonly histories = new Map<string, HistoryEntry[]>();
  replicas: ReplicaView[] = [];
  clusterView: ClusterView = { maxConnections: null, replicas: 1, connectionBudget: 64, budgetTotal: 64 };
  planJson: PlanJson = { changes: [{ app: 'a', action: 'create', detail: 'database app_a' }], errors: [] };
  isReady = false;
  /** Replaces listApps' answer for one test (a deferred promise, a failure). */
  listOverride: (() => Promise<AppView[]>) | undefined;
  /** The live figures the figures routes read (undefined: those routes are not found). */
  figures?: AppFigureSource;
  /** The other live replicas (undefined: none known). */
  livePeers?: () => Promise<readonly { id: string; url: string }[]>;
  replicaId?: string;

  constructor(apps: readonly AppView[]) {
    for (const app of apps) this.apps.set(app.name, app);
  }

  listApps(): Promise<AppView[]> {
    return this.listOverride?.() ?? Promise.resolve([...this.apps.values()]);
  }

  async getApp(name: string): Promise<AppView | undefined> {
    return this.apps.get(name);
  }

  async start(name: string): Promise<AppView> {
    this.calls.push(`start ${name}`);
    return this.#set(name, 'starting');
  }

  async stop(name: string): Promise<AppView> {
    this.calls.push(`stop ${name}`);
    return this.#set(name, 'stopping');
  }

  async plan(): Promise<PlanJson> {
    return this.planJson;
  }

  async history(name: string): Promise<HistoryEntry[]> {
    return this.histories.get(name) ?? [];
  }

  async listReplicas(): Promise<ReplicaView[]> {
    return this.replicas;
  }

  async cluster(): Promise<ClusterView> {
    return this.clusterView;
  }

  ready(): boolean {
    return this.isReady;
  }

  /** Set to keep a ready replica out of rotation (a rolling upgrade). */
  waiting: string | undefined;

  waitingFor(): string | undefined {
    return this.waiting;
  }

  #set(name: string, status: AppView['status']): AppView {
    const app = { ...this.apps.get(name)!, status };
    this.apps.set(name, app);
    return app;
  }
}

/** A pino-like log that keeps what it is given. */
export class MemoryLog {
  readonly lines: { level: 'info' | 'warn' | 'error'; obj: object; msg: string }[] = [];
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', obj, msg });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
}

/** Serves `handler` on 127.0.0.1:0 the way the gateway does: the raw request path. */
export async function listen(
  handler: (req: IncomingMessage, res: import('node:http').ServerResponse, path: string) => void,
): Promise<{ server: Server; base: string; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => handler(req, res, req.url ?? '/'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A request with the path sent byte for byte (fetch would normalise `..`). */
export function rawRequest(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
