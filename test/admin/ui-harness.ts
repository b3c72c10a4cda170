/**
 * Browser-test harness for the admin UI: Debian's Chromium driven by playwright-core (never a
 * downloaded browser), a real node:http server around `createSupervisorHandler` with a fake
 * backend the test controls, and recorders for console errors and requested URLs.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { createSupervisorHandler, type SupervisorRoutes } from '../../src/admin/handler.js';
import { createMetrics } from '../../src/admin/metrics.js';
import type { AdminBackend, AdminEventMap, AppLogSource, PlanJson } from '../../src/admin/types.js';
import type { AppvisorError } from '../../src/errors.js';
import type { AppView, ClusterView, ReplicaView } from '../../src/runtime/view.js';
import type { RotationResult } from '../../src/secrets/rotate.js';
import { AppFigures } from '../../src/serve/app-figures.js';
import { AppLogs } from '../../src/serve/app-logs.js';
import type { AppStatus, HistoryEntry } from '../../src/state/types.js';
import { MemoryLog } from './fakes.js';

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Whether the browser tests can run. Without Chromium they are skipped with one loud warning,
 * except under CI=true, where a missing browser is a failure (`.ci/install-chromium.sh`).
 */
export function browserAvailable(): boolean {
  available ??= checkBrowser();
  return available;
}

let available: boolean | undefined;

function checkBrowser(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') {
    throw new Error(`${CHROMIUM} is missing under CI=true: run .ci/install-chromium.sh first`);
  }
  console.warn(
    `!!! SKIPPING the admin UI browser tests: ${CHROMIUM} is missing (install it with .ci/install-chromium.sh)`,
  );
  return false;
}

/** Chromium with a fresh profile, no network chatter of its own, torn down by `close()`. */
export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'appvisor-chromium-'));
  // launchPersistentContext is how playwright takes a --user-data-dir of our own.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  context.setDefaultTimeout(10_000);
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** What a page did that a test may assert on. */
export interface PageRecord {
  readonly page: Page;
  /** Console errors and uncaught exceptions, as text. */
  readonly errors: string[];
}

/** Opens a page that records its console errors and page errors. */
export async function openPage(context: BrowserContext): Promise<PageRecord> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  return { page, errors };
}

/**
 * Signs in on the page at `base` with `token` and waits until the event stream is live and
 * whoami has answered (the header names the token): the page then shows what the scope allows.
 */
export async function signIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/_supervisor/`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="live"]').waitFor();
  await page.locator('#whoami', { hasText: 'Token ' }).waitFor();
}

/** Every URL any page of `context` requested, from now on. */
export function recordRequests(context: BrowserContext): string[] {
  const urls: string[] = [];
  context.on('request', (request) => urls.push(request.url()));
  return urls;
}

/** An AppView with defaults (the shape of SPEC §6). */
export function appView(name: string, patch: Partial<AppView> = {}): AppView {
  return {
    name,
    displayName: name[0]!.toUpperCase() + name.slice(1),
    status: 'stopped',
    enabled: true,
    startMode: 'on-first-visit',
    database: { mode: 'new-database', dialect: 'sqlite', name: `app_${name}`, schema: null },
    domains: [],
    jwt: { secret: 'own' },
    error: null,
    startedAt: null,
    lastReconciledAt: '2024-05-01T10:00:00.000Z',
    file: `${name}.yaml`,
    ...patch,
  };
}

/** Where a transitional status settles. */
const SETTLES_TO: Partial<Record<AppStatus, AppStatus>> = { starting: 'running', stopping: 'stopped' };

/**
 * An in-memory supervisor: start/stop move an app to starting/stopping and emit the status
 * event the way the runtime does; `settle()` finishes the transition, so a test sees each
 * step without sleeping.
 */
export class UiBackend implements AdminBackend {
  readonly events = new EventEmitter<AdminEventMap>();
  readonly apps = new Map<string, AppView>();
  readonly histories = new Map<string, HistoryEntry[]>();
  replicas: ReplicaView[] = [];
  clusterView: ClusterView = { maxConnections: null, replicas: 1, connectionBudget: 64, budgetTotal: 64 };
  readonly calls: string[] = [];
  planJson: PlanJson = { changes: [], errors: [] };
  /** Apps whose start/stop is refused with this error. */
  readonly refuse = new Map<string, AppvisorError>();
  /** The detail view's charts read these; a test records traffic into them. */
  figures = new AppFigures();
  #logs = new AppLogs({ replica: 'replica-a' });
  /** Log streams open now (the Logs tab follows while the detail view is open). */
  following = 0;
  /** The Logs tab reads these; a test writes lines with `log`. */
  readonly logs: AppLogSource = {
    lines: (app, query) => this.#logs.lines(app, query),
    follow: (app, deliver) => {
      this.following++;
      const unfollow = this.#logs.follow(app, deliver);
      return () => {
        this.following--;
        unfollow();
      };
    },
  };

  /** The other replicas whose lines the logs route asks for (none unless a test sets some). */
  peers: { id: string; url: string }[] = [];
  async livePeers(): Promise<readonly { id: string; url: string }[]> {
    return this.peers;
  }

  reset(apps: readonly AppView[]): void {
    this.peers = [];
    this.figures = new AppFigures();
    this.#logs = new AppLogs({ replica: 'replica-a' });
    this.apps.clear();
    for (const app of apps) this.apps.set(app.name, app);
    this.histories.clear();
    this.calls.length = 0;
    this.refuse.clear();
    this.planJson = { changes: [], errors: [] };
    this.replicas = [];
  }

  async listApps(): Promise<AppView[]> {
    return [...this.apps.values()];
  }

  async getApp(name: string): Promise<AppView | undefined> {
    return this.apps.get(name);
  }

  async start(name: string): Promise<AppView> {
    this.calls.push(`start ${name}`);
    const refusal = this.refuse.get(name);
    if (refusal !== undefined) throw refusal;
    return this.setStatus(name, 'starting');
  }

  async stop(name: string): Promise<AppView> {
    this.calls.push(`stop ${name}`);
    const refusal = this.refuse.get(name);
    if (refusal !== undefined) throw refusal;
    return this.setStatus(name, 'stopping');
  }

  async rotateSecret(name: string, graceMs: number, by: string): Promise<RotationResult> {
    this.calls.push(`rotate-secret ${name} ${graceMs} ${by}`);
    const refusal = this.refuse.get(name);
    if (refusal !== undefined) throw refusal;
    const until = new Date(Date.now() + graceMs).toISOString();
    return { app: name, kid: '0a1b2c3d', previousKid: '9f8e7d6c', previousUntil: until, graceMs };
  }

  /** Backup writes these bytes as the archive (restore and clone are not driven from the UI). */
  readonly operations = {
    backup: async (app: string, out: string, by: string) => {
      this.calls.push(`backup ${app} ${by}`);
      const refusal = this.refuse.get(app);
      if (refusal !== undefined) throw refusal;
      const bytes = Buffer.from(`archive of ${app}`);
      await writeFile(out, bytes);
      return { file: out, bytes: bytes.length, name: `${app}-20260102T030405Z.tar.gz` };
    },
    restore: async () => ({}),
    clone: async () => ({}),
  };

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
    return true;
  }

  /** Sets a status and emits the event, as the runtime would. */
  setStatus(name: string, status: AppStatus, error: AppView['error'] = null): AppView {
    const before = this.apps.get(name);
    if (before === undefined) throw new Error(`no app ${name}`);
    const app: AppView = {
      ...before,
      status,
      error,
      startedAt: status === 'running' ? new Date().toISOString() : before.startedAt,
    };
    this.apps.set(name, app);
    this.events.emit('status', {
      app: name,
      status,
      previous: before.status,
      error,
      at: new Date().toISOString(),
    });
    return app;
  }

  /** Writes a log line of `app` as pino would (level 30 info, 40 warn, 50 error). */
  log(app: string, level: number, msg: string, fields: Record<string, unknown> = {}): void {
    this.#logs.addRaw(
      `${JSON.stringify({ level, time: Date.now(), pid: 1, hostname: 'h', app, ...fields, msg })}\n`,
    );
  }

  /** Finishes a start or stop in progress. */
  settle(name: string): void {
    const status = this.apps.get(name)?.status;
    const next = status === undefined ? undefined : SETTLES_TO[status];
    if (next === undefined) throw new Error(`${name} is not starting or stopping (${status})`);
    this.setStatus(name, next);
  }
}

/** A served admin handler with a fake backend. */
export interface UiServer {
  readonly backend: UiBackend;
  readonly base: string;
  readonly port: number;
  /** Number of event streams the server has opened so far. */
  readonly streamsOpened: () => number;
  /** Ends every open event stream (the UI must reconnect). */
  dropStreams(): void;
  /** Replaces the admin token, as a restart with another APPVISOR_ADMIN_TOKEN would. */
  rotateToken(token: string): void;
  close(): Promise<void>;
}

/**
 * Serves `createSupervisorHandler` (with the repository's real UI files) on 127.0.0.1:0. Paths
 * outside `/_supervisor` answer a tiny page, standing in for the apps the Visit button opens.
 */
export async function startUiServer(token: string): Promise<UiServer> {
  const backend = new UiBackend();
  const metrics = createMetrics(undefined, { defaultMetrics: false });
  const make = (t: string): SupervisorRoutes =>
    createSupervisorHandler({
      backend,
      token: t,
      metrics,
      log: new MemoryLog(),
      events: { heartbeatMs: 1000 },
    });
  let routes = make(token);
  let streams = 0;
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/_supervisor' || url.startsWith('/_supervisor/')) {
      if (url.split('?')[0] === '/_supervisor/api/events') streams++;
      routes(req, res, url);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><title>app</title><p>app page ${url.replace(/[<>&"]/g, '')}</p>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    backend,
    port,
    base: `http://127.0.0.1:${port}`,
    streamsOpened: () => streams,
    dropStreams: () => routes.close(),
    rotateToken(next) {
      routes.close();
      routes = make(next);
    },
    close: () =>
      new Promise<void>((resolve) => {
        routes.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Whether `url` points at this machine (the page must never reach out anywhere else). */
export function isLocal(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'data:' || protocol === 'blob:' || protocol === 'about:') return true;
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}
