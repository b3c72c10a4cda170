/**
 * plan → apply → plan, end to end on real servers: the manifests, the state store, the
 * providers and the lock together, as `appvisor plan` / `appvisor apply` run them.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../src/config/types.js';
import { createProvider } from '../../src/providers/index.js';
import { applyPlan, computePlan } from '../../src/reconcile/commands.js';
import { ownerMarker } from '../../src/reconcile/owner.js';
import { openStateStore } from '../../src/state/store.js';
import { masterKeyIn } from '../helpers/master-key.js';
import { uniqueName } from '../helpers/servers.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

import { DIALECTS, log, manifest, PG, pgAdmin, testSettings } from './dialects.js';

describe.each(DIALECTS)('plan and apply on $name', (dialect) => {
  let dir: string;
  let appsDir: string;
  let settings: Settings;
  let prefix: string;
  let mainUrl: string;
  const cleanups: (() => Promise<void>)[] = [];

  beforeEach(async (ctx) => {
    if (!dialect.available) ctx.skip();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-apply-'));
    appsDir = path.join(dir, 'apps.d');
    await fs.mkdir(appsDir);
    // App and database names unique to this test, so parallel runs never collide.
    prefix = `t${Math.random().toString(36).slice(2, 8)}`;
    mainUrl = await dialect.mainUrl(dir);
    settings = testSettings(dir, mainUrl);
  });

  afterEach(async () => {
    if (!dialect.available) return;
    for (const fn of cleanups.splice(0)) await fn();
    await dialect.cleanup(prefix, mainUrl);
    await fs.rm(dir, { recursive: true, force: true });
  });

  const write = (file: string, text: string) => fs.writeFile(path.join(appsDir, file), text);
  const actions = (p: Awaited<ReturnType<typeof computePlan>>) =>
    p.changes.map((c) => `${c.app} ${c.action}`);

  it('creates exactly the planned databases, then has nothing to do; removal orphans, restore converges', async () => {
    const a = `${prefix}-a`;
    const b = `${prefix}_b`;
    await write('a.yaml', manifest(a, 'startMode: with-main\n'));
    await write('b.yaml', manifest(b, 'jwt: {secret: shared}\n'));

    const first = await computePlan(settings);
    expect(actions(first)).toEqual([
      'main generate-secret',
      `${a} create-database`,
      `${a} generate-secret`,
      `${a} create-record`,
      `${a} upgrade`,
      `${a} start`,
      `${b} create-database`,
      `${b} create-record`,
      `${b} upgrade`,
    ]);
    // plan changed nothing anywhere.
    expect(await dialect.exists(a.replace(/-/g, '_'), mainUrl)).toBe(false);

    const report = await applyPlan(settings, { log });
    expect(report.failures).toEqual([]);
    expect(await dialect.exists(a.replace(/-/g, '_'), mainUrl)).toBe(true);
    expect(await dialect.exists(b, mainUrl)).toBe(true);
    expect(report.outcomes.find((o) => o.step.action === 'start')?.result).toBe('skipped');

    expect(actions(await computePlan(settings))).toEqual([]);
    const again = await applyPlan(settings, { log });
    expect(again.outcomes).toEqual([]);

    // The secret stays the same across runs.
    const store = await openStateStore(mainUrl, { masterKey: await masterKeyIn(settings.dataDir) });
    const secret = await store.getSecret(a);
    await store.close();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{40,}$/);

    await fs.rm(path.join(appsDir, 'b.yaml'));
    const removal = await computePlan(settings);
    expect(actions(removal)).toEqual([`${b} orphan`]);
    // b signs with the main app's secret: it has none of its own to keep, and the plan says no more.
    expect(removal.changes[0]?.detail).toBe('manifest removed; data kept');
    await applyPlan(settings, { log });
    expect(await dialect.exists(b, mainUrl)).toBe(true);

    await write('b.yaml', manifest(b, 'jwt: {secret: shared}\n'));
    expect(actions(await computePlan(settings))).toEqual([`${b} create-record`]);
    await applyPlan(settings, { log });
    expect(actions(await computePlan(settings))).toEqual([]);

    const store2 = await openStateStore(mainUrl, { masterKey: await masterKeyIn(settings.dataDir) });
    expect(await store2.getSecret(a)).toBe(secret);
    expect((await store2.getRecord(b))?.status).toBe('stopped');
    expect((await store2.listHistory(b)).map((h) => h.outcome)).toEqual(['created', 'deleted', 'created']);
    await store2.close();
  });

  it('refuses a foreign database without adopt: true, and adopts it with it; never drops an adopted one', async () => {
    const name = `${prefix}f`;
    await dialect.createForeign(name, mainUrl);
    await write('f.yaml', manifest(name, 'deletionPolicy: drop\n'));
    const refused = await computePlan(settings);
    expect(refused.changes.filter((c) => c.app === name).map((c) => [c.action, c.code])).toEqual([
      ['refuse', 'ADOPT_REFUSED'],
    ]);
    const failed = await applyPlan(settings, { log });
    expect(failed.failures).toMatchObject([{ app: name, code: 'ADOPT_REFUSED' }]);

    await write('f.yaml', manifest(name, 'deletionPolicy: drop\ndatabase: {adopt: true}\n'));
    expect(actions(await computePlan(settings))).toContain(`${name} adopt-database`);
    expect((await applyPlan(settings, { log })).failures).toEqual([]);

    await fs.rm(path.join(appsDir, 'f.yaml'));
    await write('keep.yaml', manifest(`${prefix}k`));
    const removal = await computePlan(settings);
    expect(removal.changes.filter((c) => c.app === name).map((c) => [c.action, c.code ?? ''])).toEqual([
      ['refuse', 'DROP_REFUSED'],
      ['orphan', ''],
    ]);
    await applyPlan(settings, { log });
    expect(await dialect.exists(name, mainUrl)).toBe(true);
  });

  it('schedules the drop of what it created (deletionPolicy: drop), cancels it on restore, drops once due', async () => {
    const name = `${prefix}d`;
    await write('d.yaml', manifest(name, 'deletionPolicy: drop\n'));
    await write('keep.yaml', manifest(`${prefix}k`));
    await applyPlan(settings, { log });
    expect(await dialect.exists(name, mainUrl)).toBe(true);

    // Removed: orphaned now, the drop scheduled after the default grace (24 h), never at once.
    await fs.rm(path.join(appsDir, 'd.yaml'));
    const removal = await computePlan(settings);
    expect(actions(removal)).toEqual([`${name} orphan`, `${name} drop-database`]);
    const dueAt = Date.parse(removal.changes[1]!.dueAt!);
    expect(dueAt - Date.now()).toBeGreaterThan(23 * 3_600_000);
    expect(removal.changes[0]?.detail).toContain('data kept until');
    const applied = await applyPlan(settings, { log });
    expect(applied.failures).toEqual([]);
    expect(applied.outcomes.map((o) => `${o.step.action} ${o.result}`)).toEqual([
      'orphan updated',
      'drop-database scheduled',
    ]);
    expect(await dialect.exists(name, mainUrl)).toBe(true);
    // Every plan shows the scheduled drop until it has run.
    const pending = await computePlan(settings);
    expect(actions(pending)).toEqual([`${name} drop-database`]);
    expect(pending.changes[0]?.detail).toMatch(/\(deletionPolicy: drop; due \d{4}-\d\d-\d\dT[\d:]+Z\)$/);
    const store = await openStateStore(mainUrl, { masterKey: await masterKeyIn(settings.dataDir) });
    expect((await store.getRecord(name))?.dropAt).toBe(pending.changes[0]?.dueAt);
    await store.close();

    // Putting the file back cancels the drop: the data is there and stays.
    await write('d.yaml', manifest(name, 'deletionPolicy: drop\ndropAfter: 0s\n'));
    const restore = await computePlan(settings);
    expect(actions(restore)).toEqual([`${name} create-record`]);
    expect(restore.changes[0]?.detail).toContain('data and secret kept; the drop scheduled for');
    await applyPlan(settings, { log });
    expect(actions(await computePlan(settings))).toEqual([]);
    expect(await dialect.exists(name, mainUrl)).toBe(true);

    // dropAfter: 0s (a sandbox): the drop is due at once, in the same apply.
    await fs.rm(path.join(appsDir, 'd.yaml'));
    const now = await computePlan(settings);
    expect(actions(now)).toEqual([`${name} orphan`, `${name} drop-database`]);
    expect(now.changes[0]?.detail).toContain('data dropped now');
    expect((await applyPlan(settings, { log })).failures).toEqual([]);
    expect(await dialect.exists(name, mainUrl)).toBe(false);
    expect(actions(await computePlan(settings))).toEqual([]);
  });

  it('plans and applies a change of deletionPolicy alone as update-record', async () => {
    const name = `${prefix}u`;
    await write('u.yaml', manifest(name));
    await applyPlan(settings, { log });
    await write('u.yaml', manifest(name, 'deletionPolicy: drop\ndropAfter: 1h\n'));
    const changed = await computePlan(settings);
    expect(changed.changes.map((c) => [c.app, c.action, c.detail])).toEqual([
      [name, 'update-record', 'deletionPolicy: retain → drop; dropAfter: (default) → 1h'],
    ]);
    const applied = await applyPlan(settings, { log });
    expect(applied.outcomes.map((o) => `${o.step.action} ${o.result}`)).toEqual(['update-record updated']);
    expect(actions(await computePlan(settings))).toEqual([]);
    const store = await openStateStore(mainUrl, { masterKey: await masterKeyIn(settings.dataDir) });
    expect((await store.getRecord(name))?.spec).toMatchObject({ deletionPolicy: 'drop', dropAfter: '1h' });
    await store.close();
  });

  it('holds back removals when every manifest is gone (empty-set guard), unless allowed', async () => {
    const name = `${prefix}g`;
    await write('g.yaml', manifest(name));
    await applyPlan(settings, { log });
    await fs.rm(path.join(appsDir, 'g.yaml'));
    const guarded = await computePlan(settings);
    expect(guarded.changes.map((c) => [c.app, c.action, c.code])).toEqual([
      [name, 'refuse', 'EMPTY_SET_GUARD'],
    ]);
    expect(guarded.guard).toMatch(/no valid manifest is left/);
    await applyPlan(settings, { log });
    const store = await openStateStore(mainUrl, { masterKey: await masterKeyIn(settings.dataDir) });
    expect((await store.getRecord(name))?.status).toBe('stopped');
    await store.close();
    expect(actions(await computePlan(settings, { allowEmpty: true }))).toEqual([`${name} orphan`]);
  });

  it('recognises a database its own interrupted run created, without adopting anything foreign', async () => {
    const name = `${prefix}c`;
    await write('c.yaml', manifest(name));
    // A first apply that got as far as the state store's creation, then "crashed" after CREATE
    // DATABASE: the object carries our marker but no record mentions it.
    const store = await openStateStore(mainUrl, { masterKey: await masterKeyIn(settings.dataDir) });
    await store.ensureMainSecret('x'.repeat(64));
    const provider = createProvider(mainUrl, { dataDir: settings.dataDir });
    await provider.createDatabase(name, ownerMarker(store.storeId, name));
    await provider.close();
    await store.close();

    const p = await computePlan(settings);
    expect(actions(p).filter((a) => a.startsWith(name))).toEqual([
      `${name} generate-secret`,
      `${name} create-record`,
      `${name} upgrade`,
    ]);
    expect((await applyPlan(settings, { log })).failures).toEqual([]);
    const after = await openStateStore(mainUrl, { masterKey: await masterKeyIn(settings.dataDir) });
    expect((await after.getRecord(name))?.inventory).toMatchObject([{ name, state: 'created' }]);
    await after.close();
    expect(actions(await computePlan(settings))).toEqual([]);
  });

  it('two applies at once: one waits for the other, nothing is created twice', async () => {
    for (const n of ['x', 'y', 'z']) await write(`${n}.yaml`, manifest(`${prefix}${n}`));
    const [r1, r2] = await Promise.all([applyPlan(settings, { log }), applyPlan(settings, { log })]);
    expect([...r1.failures, ...r2.failures]).toEqual([]);
    const creates = [...r1.outcomes, ...r2.outcomes].filter((o) => o.step.action === 'create-database');
    expect(creates.map((o) => o.result)).toEqual(['created', 'created', 'created']);
    expect(actions(await computePlan(settings))).toEqual([]);
  });
});

describe.skipIf(!PG.available)('apply while PostgreSQL is unreachable', () => {
  const prefix = `t${Math.random().toString(36).slice(2, 8)}`;
  const created: string[] = [];

  afterAll(async () => {
    const c = pgAdmin();
    await c.connect();
    for (const db of created) await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await c.end();
  });

  it('fails clearly, records nothing half-done, and the next run converges', async () => {
    const mainDb = uniqueName('avmain');
    created.push(mainDb, `${prefix}o`);
    const admin = pgAdmin();
    await admin.connect();
    await admin.query(`CREATE DATABASE ${mainDb}`);
    await admin.end();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(PG.url).port || 5432));
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'appvisor-outage-'));
    try {
      const u = new URL(proxy.url(PG.url));
      u.pathname = `/${mainDb}`;
      const settings: Settings = {
        listen: { host: '127.0.0.1', port: 0 },
        appsDir: path.join(dir, 'apps.d'),
        dataDir: path.join(dir, 'data'),
        database: { url: u.toString() },
        app: undefined,
        discoveryAdapter: 'local',
        processAdapter: 'local',
        deletionGraceMs: 86_400_000,
        configFile: undefined,
      };
      await fs.mkdir(settings.appsDir);
      await fs.writeFile(path.join(settings.appsDir, 'o.yaml'), manifest(`${prefix}o`));
      proxy.cut();
      await expect(applyPlan(settings, { log, lockWaitMs: 1000 })).rejects.toMatchObject({
        code: 'DB_UNREACHABLE',
      });
      proxy.restore();
      const report = await applyPlan(settings, { log });
      expect(report.failures).toEqual([]);
      expect((await computePlan(settings)).changes).toEqual([]);
    } finally {
      await proxy.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
