/** Drift (src/serve/drift.ts): how a follower's apps.d differs from what is applied, and its log. */
import type { Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Drift, driftOf } from '../../src/serve/drift.js';
import { desired, invalidFile, loaded, manifest, record } from '../reconcile/fixtures.js';

function fakeLog() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) =>
    lines.push({ level, obj, msg });
  return { log: { warn: at('warn'), info: at('info') } as unknown as Logger, lines };
}

describe('drift of one app', () => {
  const crm = manifest('crm');
  it('is none when the local manifest is the applied one', () => {
    expect(driftOf('crm', desired([loaded(crm)]), record(crm))).toBeUndefined();
  });
  it('names a local manifest that differs, is not applied, is missing or is invalid here', () => {
    expect(driftOf('crm', desired([loaded(manifest('crm', { displayName: 'X' }))]), record(crm))).toMatch(
      /differs/,
    );
    expect(driftOf('crm', desired([loaded(crm)]), undefined)).toMatch(/not applied/);
    expect(driftOf('crm', desired([]), record(crm))).toMatch(/missing from this apps.d/);
    expect(driftOf('crm', desired([], [invalidFile('crm.yaml', 'crm')]), record(crm))).toMatch(
      /invalid here/,
    );
    expect(driftOf('crm', desired([]), record(crm, { status: 'orphaned' }))).toBeUndefined();
  });
});

describe('the drift log', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gathers the changes of a second into one line (a first start changes thousands of apps)', () => {
    const { log, lines } = fakeLog();
    const drift = new Drift(log);
    for (let i = 0; i < 5_000; i++) drift.set(`app${i}`, 'apps.d/x.yaml is not applied');
    expect(lines).toEqual([]);
    vi.advanceTimersByTime(1_000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', obj: { count: 5_000 } });
    expect((lines[0]!.obj.apps as unknown[]).length).toBe(10);
    expect(drift.names()).toHaveLength(5_000);

    for (let i = 0; i < 5_000; i++) drift.set(`app${i}`, undefined);
    vi.advanceTimersByTime(1_000);
    expect(lines[1]).toMatchObject({ level: 'info', obj: { count: 5_000 } });
    expect(drift.names()).toEqual([]);
  });

  it('logs nothing for a run that finds what it found before', () => {
    const { log, lines } = fakeLog();
    const drift = new Drift(log);
    drift.set('crm', 'differs');
    vi.advanceTimersByTime(1_000);
    drift.set('crm', 'differs');
    vi.advanceTimersByTime(1_000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', obj: { app: 'crm', drift: 'differs' } });
  });
});
