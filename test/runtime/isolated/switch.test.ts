/**
 * Switching an app's isolation mode by editing its manifest (SPEC §8.3) restarts that app alone:
 * a client hammering it meanwhile loses no request (those arriving during the restart wait for
 * the new instance, as a lazy start's visitors do), and an app beside it is not restarted.
 */
import { afterEach, expect, it } from 'vitest';
import { type Serve, startServe, waitFor } from '../../serve/harness.js';
import { FIXTURE, isolated, json, load, raw } from './helpers.js';

let serve: Serve | undefined;

afterEach(async () => {
  await serve?.close();
  serve = undefined;
});

type Where = { pid: number; mainThread: boolean };

it('shared → worker → process → shared under load: no failed request, only that app restarted', async () => {
  serve = await startServe({
    app: FIXTURE,
    manifests: {
      'm.yaml': isolated('m', 'shared', 'startMode: with-main\n'),
      'other.yaml': isolated('other', 'worker', 'startMode: with-main\n'),
    },
  });
  const s = serve;
  const where = async (): Promise<Where> => json(await raw(s.sup.url, '/apps/m/hello')) as unknown as Where;
  const otherStartedAt = await waitFor(async () => (await s.view('other')).startedAt, 'other running');
  const hammer = load(s.sup.url, '/apps/m/hello', 8);
  try {
    const steps: { mode: 'shared' | 'worker' | 'process'; is: (w: Where) => boolean }[] = [
      { mode: 'worker', is: (w) => w.pid === process.pid && !w.mainThread },
      { mode: 'process', is: (w) => w.pid !== process.pid },
      { mode: 'shared', is: (w) => w.pid === process.pid && w.mainThread },
    ];
    for (const step of steps) {
      const before = hammer.latencies.length;
      await s.write('m.yaml', isolated('m', step.mode, 'startMode: with-main\n'));
      await waitFor(async () => step.is(await where()), `m running ${step.mode}`, 15_000);
      expect((await s.view('m')).isolation?.mode).toBe(step.mode);
      // The hammer kept going through the switch.
      await waitFor(() => hammer.latencies.length > before + 50, 'requests answered after the switch');
    }
  } finally {
    await hammer.stop();
  }
  expect(hammer.failures).toEqual([]);
  expect(hammer.latencies.length).toBeGreaterThan(200);
  expect((await s.view('other')).startedAt).toBe(otherStartedAt);
}, 60_000);
