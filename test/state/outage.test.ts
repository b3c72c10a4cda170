/** The state store's server going away: a clear, retryable error, no crash, and recovery. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { AppvisorError } from '../../src/errors.js';
import { openStateReader } from '../../src/state/reader.js';
import { openStateStore } from '../../src/state/store.js';
import type { StateStore } from '../../src/state/types.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { dialectsUnderTest, type TestDatabase } from './dialects.js';
import { minimalRecord, stored } from './fixtures.js';

const servers = (await dialectsUnderTest()).filter((d) => d.dialect !== 'sqlite');

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

for (const { dialect, available, create } of servers) {
  describe.skipIf(!available)(`state store outage on ${dialect}`, () => {
    let db: TestDatabase;
    let proxy: TcpProxy;
    let store: StateStore | undefined;

    beforeEach(async () => {
      db = await create();
      const { host, port } = parseDatabaseUrl(db.url);
      proxy = await startTcpProxy(host!, port!);
    });
    afterEach(async () => {
      await store?.close();
      store = undefined;
      await proxy.close();
      await db.drop();
    });

    it('fails a call with a retryable DB_UNREACHABLE while the server is away, then recovers', async () => {
      const url = proxy.url(db.url);
      store = await openStateStore(url);
      await store.putRecord(minimalRecord('crm'), await store.beginTerm());

      proxy.cut();
      const err = await store.getRecord('crm').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppvisorError);
      expect(err).toMatchObject({ code: 'DB_UNREACHABLE', retryable: true });
      expect((err as Error).message).toContain(parseDatabaseUrl(url).redacted);
      expect((err as Error).message).toContain('state store unavailable during read record crm');

      proxy.restore();
      await vi.waitFor(
        async () => expect(await store!.getRecord('crm')).toEqual(stored(minimalRecord('crm'))),
        {
          timeout: 10_000,
          interval: 100,
        },
      );
    });

    it('fails to open with DB_UNREACHABLE and never shows the password', async () => {
      proxy.cut();
      const url = withPassword(proxy.url(db.url), 'hunter2');
      for (const attempt of [() => openStateStore(url), () => openStateReader(url)]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'DB_UNREACHABLE', retryable: true });
        expect((err as Error).message).not.toContain('hunter2');
        expect((err as Error).message).toContain(':***@');
      }
    });
  });
}

describe('state store on an unusable SQLite path', () => {
  it('says which file it could not open', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-outage-'));
    try {
      const blocker = path.join(dir, 'not-a-folder');
      fs.writeFileSync(blocker, '');
      const err = await openStateStore(`sqlite:${blocker}/main.sqlite`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppvisorError);
      expect(err).toMatchObject({ code: 'STATE_STORE_FAILED' });
      expect((err as Error).message).toContain(`state store sqlite:${blocker}/main.sqlite: open:`);
      expect((err as Error).message).toContain(`mkdir '${blocker}'`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
