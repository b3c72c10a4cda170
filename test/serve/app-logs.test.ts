import { describe, expect, it } from 'vitest';
import { AppLogs } from '../../src/serve/app-logs.js';

/** A line as pino writes it. */
function raw(fields: Record<string, unknown>): string {
  return `${JSON.stringify({ level: 30, time: Date.now(), pid: 1, hostname: 'h', ...fields })}\n`;
}

describe('AppLogs', () => {
  it("keeps each app's lines with the replica, and ignores lines of no app", () => {
    const logs = new AppLogs({ replica: 'r1' });
    logs.addRaw(raw({ app: 'a', msg: 'one', marker: 'x' }));
    logs.addRaw(raw({ msg: 'supervisor line' }));
    logs.addRaw(raw({ nested: { app: 'a' }, msg: 'not an app line' }));
    logs.addRaw('not json "app": at all\n');
    logs.addRaw(raw({ app: 'b', msg: 'two', level: 40 }));
    expect(logs.lines('a')).toEqual([
      expect.objectContaining({ app: 'a', msg: 'one', marker: 'x', level: 30, replica: 'r1' }),
    ]);
    expect(logs.lines('a')[0]).not.toHaveProperty('pid');
    expect(logs.lines('b').map((l) => l.msg)).toEqual(['two']);
    expect(logs.lines('nobody')).toEqual([]);
  });

  it('drops the oldest lines past the per-app line cap', () => {
    const logs = new AppLogs({ replica: 'r1', perAppLines: 10 });
    for (let i = 0; i < 35; i++) logs.addRaw(raw({ app: 'a', msg: `line ${i}` }));
    expect(logs.lines('a').map((l) => l.msg)).toEqual(Array.from({ length: 10 }, (_, i) => `line ${25 + i}`));
  });

  it('drops the oldest lines past the per-app byte cap', () => {
    const logs = new AppLogs({ replica: 'r1', perAppBytes: 2_000 });
    for (let i = 0; i < 50; i++) logs.addRaw(raw({ app: 'a', msg: `line ${i}`, pad: 'x'.repeat(100) }));
    const kept = logs.lines('a');
    expect(kept.length).toBeGreaterThan(5);
    expect(kept.length).toBeLessThan(20);
    expect(kept.at(-1)!.msg).toBe('line 49');
    expect(logs.bytes).toBeLessThanOrEqual(2_000);
  });

  it('stays under the global cap with many apps, the least recently written going first', () => {
    const logs = new AppLogs({ replica: 'r1', totalBytes: 50_000 });
    for (let i = 0; i < 2_000; i++) logs.addRaw(raw({ app: `app-${i}`, msg: 'hello' }));
    expect(logs.bytes).toBeLessThanOrEqual(50_000);
    expect(logs.lines('app-0')).toEqual([]);
    expect(logs.lines('app-1999').map((l) => l.msg)).toEqual(['hello']);
  });

  it('filters by since and limit, follows new lines, and forgets a dropped app', () => {
    const logs = new AppLogs({ replica: 'r1' });
    const now = Date.now();
    logs.addRaw(raw({ app: 'a', msg: 'old', time: now - 60_000 }));
    logs.addRaw(raw({ app: 'a', msg: 'new1', time: now }));
    logs.addRaw(raw({ app: 'a', msg: 'new2', time: now }));
    expect(logs.lines('a', { since: now - 1_000 }).map((l) => l.msg)).toEqual(['new1', 'new2']);
    expect(logs.lines('a', { limit: 1 }).map((l) => l.msg)).toEqual(['new2']);
    const seen: string[] = [];
    const stop = logs.follow('a', (l) => seen.push(l.msg));
    logs.addRaw(raw({ app: 'a', msg: 'live' }));
    logs.addRaw(raw({ app: 'b', msg: 'other app' }));
    stop();
    logs.addRaw(raw({ app: 'a', msg: 'after' }));
    expect(seen).toEqual(['live']);
    logs.drop('a');
    expect(logs.lines('a')).toEqual([]);
    expect(logs.bytes).toBe(logs.lines('b').length > 0 ? raw({ app: 'b', msg: 'other app' }).length : 0);
  });
});
