/**
 * The host of an isolated app (SPEC §8.3): runs in the app's own worker thread or child process.
 * It builds the same AppContext a shared app gets (the application module, its own database
 * client on the settings the supervisor resolved, the data-version check, JWT helpers on the
 * secrets the supervisor sent, config, a logger whose lines go to the supervisor's log), serves
 * the app on a Unix socket, and sends a heartbeat with its memory. Anything uncaught ends it: an
 * isolated app's state after such an error is undefined, and the supervisor restarts it.
 */
import fs from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { pino } from 'pino';
import { dialectFor, parseDatabaseUrl } from '../../dialects/registry.js';
import { AppvisorError, messageOf } from '../../errors.js';
import type { AppDatabase } from '../../providers/provider.js';
import type { AppContext, AppInstance } from '../contract.js';
import { loadApplication } from '../contract.js';
import { createJwtHelpers, JwtKeyRing } from '../jwt.js';
import { checkDataVersion } from '../migrations.js';
import type { FromHost, HostDatabase, ToHost } from './protocol.js';

type StartMessage = Extract<ToHost, { t: 'start' }>;

const port = parentPort;
const send: (message: FromHost, done?: () => void) => void = port
  ? (message, done) => {
      port.postMessage(message);
      done?.();
    }
  : (message, done) => {
      if (process.connected) process.send!(message, undefined, undefined, () => done?.());
      else done?.();
    };

let keys: { own: JwtKeyRing; main: JwtKeyRing } | undefined;
let instance: AppInstance | undefined;
let db: AppDatabase | undefined;
let server: Server | undefined;
let socketPath: string | undefined;
let stopping = false;

function onMessage(message: ToHost): void {
  switch (message.t) {
    case 'start':
      start(message).then(
        () => send({ t: 'ready' }),
        (err: unknown) => {
          const params = err instanceof AppvisorError ? err.params : {};
          const code = err instanceof AppvisorError ? err.code : 'APP_ERROR';
          send({ t: 'failed', code, message: messageOf(err), params }, () => exit(1));
        },
      );
      return;
    case 'secrets':
      keys?.own.set(message.own ?? message.main);
      keys?.main.set(message.main);
      return;
    case 'stop':
      void stop();
      return;
  }
}

async function start(message: StartMessage): Promise<void> {
  const { spec } = message;
  startHeartbeat(message.heartbeatMs);
  const log = pino(
    { level: message.logLevel, base: { app: spec.name } },
    { write: (line: string) => send({ t: 'log', line }) },
  );
  const application = await loadApplication(spec.application.module ?? undefined);
  db = openDatabase(message.database);
  await checkDataVersion(db.client, {
    app: spec.name,
    targetVersion: spec.data.version,
    application: application.name,
  });
  const { secrets } = message;
  keys = { own: new JwtKeyRing(secrets.own ?? secrets.main), main: new JwtKeyRing(secrets.main) };
  const context: AppContext = {
    name: spec.name,
    ...(spec.displayName ? { displayName: spec.displayName } : {}),
    basePath: spec.basePath,
    config: spec.config,
    database: db,
    jwt: createJwtHelpers({
      app: spec.name,
      ownSecret: keys.own,
      mode: spec.secret.mode,
      mainSecret: keys.main,
      isMain: spec.isMain,
    }),
    log,
    isMain: spec.isMain,
  };
  instance = await application.create(context);
  server = await listen(instance, message.socketPath);
}

function openDatabase(settings: HostDatabase): AppDatabase {
  const c = settings.connection;
  const url = parseDatabaseUrl(c.url ?? `sqlite:${c.filename}`);
  const client = dialectFor(url).openClient(url, {
    max: settings.maxConnections,
    ...(c.schema ? { schema: c.schema } : {}),
  });
  return { dialect: c.dialect, client, connection: c };
}

function listen(app: AppInstance, path: string): Promise<Server> {
  const http = createServer(app.handler);
  // The supervisor's agent keeps its connections: a server-side idle close would race a reuse.
  http.keepAliveTimeout = 0;
  http.requestTimeout = 0;
  const upgrade = app.upgrade;
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (upgrade) upgrade(req, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  socketPath = path;
  fs.rmSync(path, { force: true });
  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(path, () => {
      http.off('error', reject);
      resolve(http);
    });
  });
}

function startHeartbeat(intervalMs: number): void {
  const beat = (): void => {
    const m = process.memoryUsage();
    send({ t: 'heartbeat', memory: { rss: m.rss, heap: m.heapUsed + m.external + m.arrayBuffers } });
  };
  beat();
  setInterval(beat, intervalMs);
}

/** Closes the app, then its database, then ends (the supervisor kills it if it takes too long). */
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  server?.close();
  server?.closeAllConnections();
  try {
    await instance?.close?.();
  } catch (err) {
    process.stderr.write(`app close() failed: ${messageOf(err)}\n`);
  }
  await db?.client.close().catch(() => undefined);
  send({ t: 'stopped' }, () => exit(0));
}

function exit(code: number): void {
  if (socketPath) fs.rmSync(socketPath, { force: true });
  if (port) process.exit(code);
  // A child: let the IPC message go out first.
  else setImmediate(() => process.exit(code));
}

/** Uncaught: the app's state is undefined now. Say why, then end (the supervisor restarts it). */
function fatal(err: unknown): void {
  send({ t: 'fatal', message: messageOf(err) }, () => exit(70));
}

if (port) {
  port.on('message', onMessage);
} else {
  process.on('message', (m) => onMessage(m as ToHost));
  // The supervisor is gone (even SIGKILLed: its end of the channel closed): never outlive it.
  process.on('disconnect', () => exit(0));
}
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
