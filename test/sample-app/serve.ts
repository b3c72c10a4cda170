/** Runs the sample app on a real node:http server on port 0, the way the runtime will. */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { AppDatabase } from '../../src/providers/provider.js';
import type { AppContext } from '../../src/runtime/contract.js';
import { createJwtHelpers, type JwtHelpers } from '../../src/runtime/jwt.js';
import { migrate } from '../../src/runtime/migrations.js';
import sampleApp from '../../src/sample-app/index.js';

export interface ServedApp {
  readonly url: string;
  readonly jwt: JwtHelpers;
  close(): Promise<void>;
}

export interface ServeOptions {
  readonly name?: string;
  readonly displayName?: string;
  /** Builds the app's JWT helpers; default: an own secret. */
  readonly jwt?: JwtHelpers;
}

export async function serveSampleApp(database: AppDatabase, options: ServeOptions = {}): Promise<ServedApp> {
  const name = options.name ?? 'notes';
  const log = pino({ level: 'silent' });
  await migrate(database.client, sampleApp.migrations, {
    app: name,
    targetVersion: sampleApp.version,
    allowUpgrade: true,
  });
  const jwt =
    options.jwt ??
    createJwtHelpers({
      app: name,
      ownSecret: crypto.randomBytes(32).toString('base64url'),
      mode: 'own',
      mainSecret: crypto.randomBytes(32).toString('base64url'),
      isMain: false,
    });
  const ctx: AppContext = {
    name,
    ...(options.displayName === undefined ? {} : { displayName: options.displayName }),
    basePath: `/apps/${name}`,
    config: {},
    database,
    jwt,
    log,
    isMain: false,
  };
  const instance = await sampleApp.create(ctx);
  const server = http.createServer(instance.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    jwt,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      await instance.close?.();
    },
  };
}
