/**
 * The `local` process adapter: the shared contract suite, on SQLite databases in a temp folder,
 * plus what selecting an adapter by settings does.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminEventMap } from '../../src/admin/types.js';
import { describeMainDatabase } from '../../src/config/main-database.js';
import { ProviderSet } from '../../src/providers/set.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import type { InstanceSpec } from '../../src/runtime/adapter.js';
import { loadApplication } from '../../src/runtime/contract.js';
import { LocalAdapter } from '../../src/runtime/local-adapter.js';
import { createProcessAdapter } from '../../src/runtime/runtime.js';
import { adapterContract, type ContractHarness } from './adapter-contract.js';

let root: string;
let runs = 0;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-adapter-'));
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

adapterContract(
  'local',
  async ({ startTimeoutMs, module }): Promise<ContractHarness> => {
    const dataDir = path.join(root, `run-${++runs}`);
    await fs.mkdir(dataDir, { recursive: true });
    const mainUrl = `sqlite:${path.join(dataDir, 'main.sqlite')}`;
    const main = describeMainDatabase(mainUrl, dataDir);
    const providers = new ProviderSet(mainUrl, { dataDir });
    const secrets = new Map<string, string>([['main', 'main-secret-0123456789abcdef0123456789']]);
    const adapter = new LocalAdapter({
      providers,
      secrets: { getSecret: async (app) => secrets.get(app) },
      log: pino({ level: 'silent' }),
      startTimeoutMs,
    });
    return {
      adapter,
      async spec(name, extra = {}): Promise<InstanceSpec> {
        await providers.main.createDatabase(name, ownerMarker('contract', name));
        secrets.set(name, `${name}-secret-0123456789abcdef0123456789`);
        return {
          name,
          isMain: false,
          basePath: `/apps/${name}`,
          domains: [`${name}.example.com`],
          config: extra.config ?? {},
          database: {
            kind: 'provisioned',
            target: {
              dialect: 'sqlite',
              server: main.server,
              serverRef: 'main',
              kind: 'database',
              database: name,
            },
          },
          secret: { app: name, mode: 'own' },
          application: { module },
          data: { version: 1, boot: extra.boot ?? 'check', upgrade: true },
          hash: `${name}-${JSON.stringify(extra)}`,
        };
      },
      close: () => providers.close(),
    };
  },
  () => root,
);

describe('process adapter selection', () => {
  const options = async () => {
    const dataDir = path.join(root, 'select');
    return {
      application: await loadApplication(undefined),
      providers: new ProviderSet(`sqlite:${path.join(dataDir, 'main.sqlite')}`, { dataDir }),
      store: { getSecret: async () => undefined } as never,
      log: pino({ level: 'silent' }),
      events: new EventEmitter<AdminEventMap>(),
    };
  };

  it('makes the local adapter for processAdapter local', async () => {
    const adapter = createProcessAdapter('local', await options());
    expect(adapter.kind).toBe('local');
    await adapter.close();
  });

  it('refuses an unknown adapter with a settings error naming the supported ones', async () => {
    const opts = await options();
    expect(() => createProcessAdapter('docker', opts)).toThrow(
      expect.objectContaining({
        code: 'ADAPTER_UNSUPPORTED',
        message: 'APP_PROCESS_ADAPTER=docker is not supported; supported: local',
      }),
    );
  });
});
