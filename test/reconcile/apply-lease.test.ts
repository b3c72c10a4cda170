/**
 * `apply` beside running servers (SPEC §4, §8.1): it takes the leader lease for its run, so it
 * never provisions alongside a server; a server leading the store refuses it at once with
 * LOCK_HELD naming the server (which reconciles apps.d itself), and once the server is gone it runs.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { applyPlan } from '../../src/reconcile/commands.js';
import { type Supervisor, startSupervisor } from '../../src/serve/supervisor.js';
import { DIALECTS, log, manifest, testSettings } from './dialects.js';

describe.each(DIALECTS)('apply beside a server on $name', (dialect) => {
  let dir: string;
  let settings: Settings;
  let prefix: string;
  let mainUrl: string;
  let server: Supervisor | undefined;

  beforeEach(async (ctx) => {
    if (!dialect.available) ctx.skip(`needs a ${dialect.name} server`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-apply-lease-'));
    await fs.mkdir(path.join(dir, 'apps.d'));
    prefix = `t${Math.random().toString(36).slice(2, 8)}`;
    mainUrl = await dialect.mainUrl(dir);
    settings = { ...testSettings(dir, mainUrl), listen: { host: '127.0.0.1', port: 0 } };
  });

  afterEach(async () => {
    if (!dialect.available) return;
    await server?.close({ graceMs: 2_000 });
    server = undefined;
    await dialect.cleanup(prefix, mainUrl);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is refused at once with LOCK_HELD naming the leading server, and runs once it is gone', async () => {
    await fs.writeFile(path.join(settings.appsDir, `${prefix}_a.yaml`), manifest(`${prefix}_a`));
    server = await startSupervisor({ settings, log, resyncMs: 0 });
    await server.ready;
    const t0 = performance.now();
    const err = await applyPlan(settings, { log, lockWaitMs: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'LOCK_HELD' });
    expect((err as Error).message).toContain(server.replica.id);
    // At once: a server leads for good, so waiting for it would only delay the answer.
    expect(performance.now() - t0).toBeLessThan(5_000);

    await server.close({ graceMs: 2_000 });
    server = undefined;
    await fs.writeFile(path.join(settings.appsDir, `${prefix}_b.yaml`), manifest(`${prefix}_b`));
    const report = await applyPlan(settings, { log, lockWaitMs: 5_000 });
    expect(report.failures).toEqual([]);
    expect(
      report.outcomes.some((o) => o.step.app === `${prefix}_b` && o.step.action === 'create-record'),
    ).toBe(true);
  });
});
