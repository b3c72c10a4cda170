/**
 * The figure sampler (serve/figure-sampler.ts): isolated apps' memory into the figures, now and
 * when an app's series is read; a removed app's figures dropped.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { AdminEventMap } from '../../src/admin/types.js';
import { AppFigures } from '../../src/serve/app-figures.js';
import { startFigureSampler } from '../../src/serve/figure-sampler.js';

describe('startFigureSampler', () => {
  it("records isolated apps' memory, at once on a read too, and drops an orphaned app", () => {
    const memory = new Map<string, number>([['shop', 41]]);
    const runtime = {
      names: () => ['shop', 'blog'],
      isolation: (name: string) =>
        name === 'blog' ? undefined : { mode: 'worker' as const, memoryMb: memory.get(name) },
    };
    const events = new EventEmitter<AdminEventMap>();
    const figures = new AppFigures();
    const sampler = startFigureSampler({ figures, runtime, events });
    try {
      expect([...figures.current()]).toEqual([{ app: 'shop', openConnections: 0, memoryMb: 41 }]);
      memory.set('shop', 57);
      const { source } = sampler;
      expect(source.raw('shop').slots.at(-1)!.memoryMb).toBe(57);
      expect(source.seriesOf(source.raw('shop')).points.at(-1)!.memoryMb).toBe(57);
      expect('memoryMb' in source.seriesOf(source.raw('blog')).points.at(-1)!).toBe(false);

      const at = new Date().toISOString();
      events.emit('status', { app: 'shop', status: 'orphaned', previous: 'running', error: null, at });
      expect(figures.size).toBe(0);
    } finally {
      sampler.stop();
    }
    expect(events.listenerCount('status')).toBe(0);
  });
});
