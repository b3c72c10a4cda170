/**
 * `shutdownDrain`: on close, readyz says 503 at once while requests are still served for the
 * drain, so a load balancer takes the replica out of rotation before its connections close.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { manifest, type Serve, startServe } from './harness.js';

describe('shutdown drain', () => {
  let serve: Serve | undefined;
  afterEach(async () => {
    await serve?.close();
    serve = undefined;
  });

  it('answers readyz 503 and goes on serving for the drain, then stops', async () => {
    serve = await startServe({
      manifests: { 'crm.yaml': manifest('crm', 'startMode: with-main\n') },
      settings: { shutdownDrainMs: 800 },
    });
    await serve.sup.ready;
    expect((await serve.request('/_supervisor/readyz')).status).toBe(200);
    const t0 = performance.now();
    const closed = serve.sup.close({ graceMs: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    expect((await serve.request('/_supervisor/readyz')).status).toBe(503);
    const during = await serve.request('/apps/crm/api/info');
    expect([during.status, during.body]).toEqual([200, { name: 'crm', version: '2' }]);
    await closed;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(800);
    await expect(serve.request('/_supervisor/healthz')).rejects.toThrow();
  });
});
