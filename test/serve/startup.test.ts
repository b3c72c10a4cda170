/**
 * Startup: an edit to apps.d made while `serve` starts is applied by itself, without a reload()
 * and without waiting for the periodic resync (SPEC §4: the running server picks changes up).
 */
import { writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { type Supervisor, startSupervisor } from '../../src/serve/supervisor.js';
import { ADMIN_TOKEN, manifest, request, waitFor } from './harness.js';

let sup: Supervisor | undefined;
const dirs: string[] = [];

afterEach(async () => {
  await sup?.close({ graceMs: 2_000 });
  sup = undefined;
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function folder(): Promise<{ settings: Settings; file: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-serve-'));
  dirs.push(dir);
  const appsDir = path.join(dir, 'apps.d');
  const dataDir = path.join(dir, 'data');
  await fs.mkdir(appsDir);
  await fs.mkdir(dataDir);
  const file = path.join(appsDir, 'crm.yaml');
  await fs.writeFile(file, manifest('crm', 'startMode: with-main\n'));
  const settings: Settings = {
    listen: { host: '127.0.0.1', port: 0 },
    appsDir,
    dataDir,
    database: { url: `sqlite:${path.join(dataDir, 'main.sqlite')}` },
    app: undefined,
    discoveryAdapter: 'local',
    processAdapter: 'local',
    deletionGraceMs: 86_400_000,
    configFile: undefined,
  };
  return { settings, file };
}

describe('serve: startup', () => {
  it('applies an edit made while it starts, after its first read of apps.d, without reload() or a resync', async () => {
    const { settings, file } = await folder();
    // The edit lands at a known point of the start: when the gateway listens, which is after
    // apps.d was first read. It is written synchronously, so it is on disk before the start goes on.
    let editedAt: string | undefined;
    const log = pino(
      { level: 'info' },
      {
        write(line: string) {
          const { msg } = JSON.parse(line) as { msg: string };
          if (editedAt === undefined && msg === 'appvisor listening') {
            writeFileSync(file, manifest('crm', 'startMode: with-main\nenabled: false\n'));
            editedAt = msg;
          }
        },
      },
    );
    sup = await startSupervisor({
      settings,
      log,
      env: { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN },
      backoff: { baseMs: 100, maxMs: 1000 },
      // An hour: only the watcher can bring the edit in within the test's time.
      resyncMs: 3_600_000,
    });
    expect(editedAt).toBe('appvisor listening');
    await sup.ready;
    const base = sup.url;
    const disabled = await waitFor(
      async () => {
        const answer = await request(base, '/apps/crm/api/info');
        return answer.status === 503 ? answer : undefined;
      },
      'crm to be disabled by the edit',
      5_000,
    );
    expect(disabled.body).toMatchObject({ error: { code: 'APP_DISABLED', app: 'crm' } });
    const view = await request(base, '/_supervisor/api/apps/crm', { token: ADMIN_TOKEN });
    expect(view.body).toMatchObject({ name: 'crm', status: 'disabled', enabled: false });
  });

  it('rejects when it cannot listen, after stopping what it had started; the same folder starts again', async () => {
    const first = await folder();
    sup = await startSupervisor({ settings: first.settings, log: pino({ level: 'silent' }) });
    const taken = sup.address.port;
    const second = await folder();
    const lines: { msg: string; runnable?: string }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const settings = { ...second.settings, listen: { host: '127.0.0.1', port: taken } };
    await expect(
      startSupervisor({ settings, log, env: { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN } }),
    ).rejects.toThrow(/EADDRINUSE/);
    expect(lines).toContainEqual(
      expect.objectContaining({ runnable: 'gateway', msg: 'failed to start; stopping what was started' }),
    );
    await sup.close();
    sup = await startSupervisor({ settings: second.settings, log: pino({ level: 'silent' }) });
    await sup.ready;
    expect((await request(sup.url, '/apps/crm/api/info')).body).toMatchObject({ name: 'crm' });
  });
});
