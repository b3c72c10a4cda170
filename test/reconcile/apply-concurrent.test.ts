/**
 * `apply` reconciling many apps at once (`reconcile.concurrency`), end to end on each main
 * database dialect: every record, inventory item and history entry lands as it would one app
 * at a time, under the one lock term, and the bound holds.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { applyPlan, computePlan } from '../../src/reconcile/commands.js';
import { openStateStore } from '../../src/state/store.js';
import { masterKeyIn } from '../helpers/master-key.js';
import { DIALECTS, log, manifest, testSettings } from './dialects.js';

const APPS = 30;
const CONCURRENCY = 4;

describe.each(DIALECTS)('apply of many apps at once on $name', (dialect) => {
  let dir: string;
  let settings: Settings;
  let prefix: string;
  let mainUrl: string;

  beforeEach(async (ctx) => {
    if (!dialect.available) ctx.skip();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-apply-concurrent-'));
    await fs.mkdir(path.join(dir, 'apps.d'));
    prefix = `t${Math.random().toString(36).slice(2, 8)}`;
    mainUrl = await dialect.mainUrl(dir);
    settings = { ...testSettings(dir, mainUrl), reconcile: { concurrency: CONCURRENCY } };
  });

  afterEach(async () => {
    if (!dialect.available) return;
    await dialect.cleanup(prefix, mainUrl);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it(`converges ${APPS} apps with concurrency ${CONCURRENCY}: every record, inventory item and history entry right`, async () => {
    const names = Array.from({ length: APPS }, (_, i) => `${prefix}_${String(i).padStart(2, '0')}`);
    // On PostgreSQL every other app is a schema in the main database, so both kinds of DDL overlap.
    const schemaApp = (i: number): boolean => dialect.name === 'postgres' && i % 2 === 1;
    for (const [i, name] of names.entries()) {
      const extra = schemaApp(i) ? 'database: {mode: new-schema}\n' : '';
      await fs.writeFile(path.join(settings.appsDir, `${name}.yaml`), manifest(name, extra));
    }

    let active = 0;
    let maxActive = 0;
    const report = await applyPlan(settings, {
      log,
      onApp: () => {
        active++;
        maxActive = Math.max(maxActive, active);
      },
      // The migration is an app's last step here; its run still holds its slot afterwards.
      onStep: (o) => {
        if (o.step.action === 'upgrade') active--;
      },
    });
    expect(report.failures).toEqual([]);
    expect(maxActive).toBeGreaterThan(1);
    expect(maxActive).toBeLessThanOrEqual(CONCURRENCY);
    expect(report.outcomes.filter((o) => o.result === 'failed')).toEqual([]);

    const store = await openStateStore(mainUrl, { log, masterKey: await masterKeyIn(settings.dataDir) });
    try {
      const records = await store.listRecords();
      expect(records.map((r) => r.name)).toEqual(names);
      for (const [i, record] of records.entries()) {
        expect(record).toMatchObject({ status: 'stopped', hasSecret: true, version: 2, dataVersion: 2 });
        expect(record.lastError).toBeUndefined();
        expect(record.inventory).toEqual([
          expect.objectContaining({
            kind: schemaApp(i) ? 'schema' : 'database',
            state: 'created',
            owner: expect.stringContaining(`:${record.name}`),
          }),
        ]);
        expect(await store.getSecret(record.name)).toMatch(/.{32,}/);
        const history = await store.listHistory(record.name);
        expect(history.map((h) => h.outcome)).toEqual(['created']);
        expect(history[0]?.steps.map((s) => s.action)).toEqual([
          schemaApp(i) ? 'create-schema' : 'create-database',
          'generate-secret',
          'create-record',
          'upgrade',
        ]);
      }
    } finally {
      await store.close();
    }
    for (const [i, name] of names.entries()) {
      if (!schemaApp(i)) expect(await dialect.exists(name, mainUrl)).toBe(true);
    }
    // Converged: nothing left to plan, and a second apply does nothing.
    expect((await computePlan(settings)).changes).toEqual([]);
    expect((await applyPlan(settings, { log })).outcomes).toEqual([]);
  });
});
