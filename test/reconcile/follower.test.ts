/**
 * A follower replica's plan (src/reconcile/follower.ts): the applied record is its desired state,
 * its own runtime the only thing it changes — never a provisioning step, a migration or a drop —
 * and an app whose data is at another version than its code is held back from its visitors.
 */
import { describe, expect, it } from 'vitest';
import { planFollower } from '../../src/reconcile/follower.js';
import type { ActualApp, PlanOptions } from '../../src/reconcile/model.js';
import { current, loaded, MAIN_PG, manifest, NOW, record, STORE } from './fixtures.js';

const OPTS: PlanOptions & { storeId: string } = { main: MAIN_PG, now: NOW, codeVersion: 2, storeId: STORE };
const running = { status: 'running' as const };
const actions = (steps: { action: string }[]) => steps.map((s) => s.action);

describe('a follower replica plan', () => {
  it("starts a with-main app from the applied record, whatever the follower's own files say", () => {
    const spec = manifest('crm', { startMode: 'with-main' });
    const app: ActualApp = {
      ...current(spec, { record: record(spec, { status: 'stopped' }) }),
      dataVersion: 2,
    };
    const steps = planFollower('crm', app.record, app, OPTS);
    expect(steps).toEqual([{ app: 'crm', action: 'start', detail: 'startMode: with-main' }]);
  });

  it('never provisions, migrates or drops: a missing database or older data is the leader’s to handle', () => {
    const spec = manifest('crm', { startMode: 'with-main', jwt: { secret: 'own' } });
    const app: ActualApp = {
      record: record(spec, { status: 'stopped', hasSecret: false }),
      observed: { exists: false },
      hasSecret: false,
      dataVersion: 2,
    };
    const steps = planFollower('crm', app.record, app, OPTS);
    for (const step of steps)
      expect(['stop', 'restart', 'start', 'update-routes', 'orphan']).toContain(step.action);
  });

  it('carries out an operator stop written on another replica', () => {
    const spec = manifest('crm', { startMode: 'with-main' });
    const rec = record(spec, { intent: { action: 'stop', by: 'alice', at: '2026-01-01T00:00:00.000Z' } });
    const app: ActualApp = {
      ...current(spec, { record: rec }),
      runtime: { ...running, specHash: rec.specHash },
      dataVersion: 2,
    };
    expect(actions(planFollower('crm', rec, app, OPTS))).toEqual(['stop']);
  });

  it('restarts an instance running an older spec once the leader applied a new one', () => {
    const before = manifest('crm', { config: { a: 1 } });
    const after = manifest('crm', { config: { a: 2 } });
    const app: ActualApp = {
      ...current(after),
      runtime: { ...running, spec: before, specHash: 'old' },
      dataVersion: 2,
    };
    expect(actions(planFollower('crm', app.record, app, OPTS))).toEqual(['restart']);
  });

  it('stops and unroutes an app the leader removed (its record orphaned or gone)', () => {
    const spec = manifest('crm');
    const orphaned = record(spec, { status: 'orphaned' });
    const up: ActualApp = { ...current(spec, { record: orphaned }), runtime: running };
    expect(actions(planFollower('crm', orphaned, up, OPTS))).toEqual(['stop', 'orphan']);
    const routed: ActualApp = { hasSecret: false, runtime: { status: 'stopped' } };
    expect(actions(planFollower('crm', undefined, routed, OPTS))).toEqual(['orphan']);
    expect(planFollower('crm', undefined, { hasSecret: false }, OPTS)).toEqual([]);
  });

  it('holds back an app of its own apps.d the leader has not applied yet (503, not a 404), and unroutes it once the file is gone', () => {
    const spec = manifest('crm', { startMode: 'with-main' });
    const steps = planFollower('crm', undefined, { hasSecret: false }, OPTS, loaded(spec));
    expect(steps).toEqual([
      expect.objectContaining({
        action: 'update-routes',
        hold: { code: 'APP_STARTING', params: { app: 'crm' } },
      }),
    ]);
    expect(
      actions(planFollower('crm', undefined, { hasSecret: false, runtime: { status: 'stopped' } }, OPTS)),
    ).toEqual(['orphan']);
  });

  it('holds back an app the leader is still creating (503 APP_STARTING, never a start on half-made data)', () => {
    const spec = manifest('crm', { startMode: 'with-main' });
    const rec = record(spec, { status: 'provisioning' });
    const steps = planFollower('crm', rec, { ...current(spec, { record: rec }) }, OPTS);
    expect(steps).toEqual([
      expect.objectContaining({
        action: 'update-routes',
        hold: { code: 'APP_STARTING', params: { app: 'crm' } },
      }),
    ]);
  });

  it('stops and holds back an app whose data was migrated past its code (a rolling upgrade)', () => {
    const spec = manifest('crm', { startMode: 'with-main' });
    const app: ActualApp = { ...current(spec), runtime: running, dataVersion: 3 };
    const steps = planFollower('crm', app.record, app, OPTS);
    expect(actions(steps)).toEqual(['stop', 'update-routes']);
    expect(steps[1]?.hold).toEqual({
      code: 'APP_DATA_NEWER',
      params: { app: 'crm', dataVersion: 3, codeVersion: 2 },
    });
  });

  it('holds back an app whose data is older than its code while a live replica runs the older code (503)', () => {
    const spec = manifest('crm', { startMode: 'with-main' });
    const app: ActualApp = {
      ...current(spec, { record: record(spec, { status: 'stopped' }) }),
      dataVersion: 1,
    };
    const opts = { ...OPTS, upgradeHeldBy: { replica: 'web-1-7-ab12', version: 1 } };
    const steps = planFollower('crm', app.record, app, opts);
    expect(steps).toEqual([
      expect.objectContaining({
        action: 'update-routes',
        hold: expect.objectContaining({ code: 'APP_NEEDS_UPGRADE' }),
      }),
    ]);
  });

  it("lets visits wait for the leader's migration once no live replica runs the older code", () => {
    const spec = manifest('crm', { startMode: 'with-main' });
    const app: ActualApp = {
      ...current(spec, { record: record(spec, { status: 'stopped' }) }),
      dataVersion: 1,
    };
    expect(planFollower('crm', app.record, app, OPTS)).toEqual([
      expect.objectContaining({ action: 'update-routes', awaitUpgrade: true }),
    ]);
    // The older replica drains (leaving): it serves no new visits, so they wait here too.
    const leaving = {
      ...OPTS,
      upgradeHeldBy: { replica: 'web-1-7-ab12', version: 1, leaving: true as const },
    };
    expect(planFollower('crm', app.record, app, leaving)).toEqual([
      expect.objectContaining({ action: 'update-routes', awaitUpgrade: true }),
    ]);
    const upgrading = record(spec, { status: 'upgrading' });
    expect(planFollower('crm', upgrading, { ...app, record: upgrading }, OPTS)).toEqual([
      expect.objectContaining({ action: 'update-routes', awaitUpgrade: true }),
    ]);
  });
});
