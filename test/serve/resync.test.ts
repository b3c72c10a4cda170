/**
 * The periodic resync: it re-reads apps.d, so a change no file event announces (here: an
 * environment variable a manifest refers to) is applied within one resync period (SPEC §4).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { manifest, type Serve, startServe, waitFor } from './harness.js';

const VAR = 'APPVISOR_TEST_RESYNC_DOMAIN';
let serve: Serve | undefined;

afterEach(async () => {
  await serve?.close();
  serve = undefined;
  delete process.env[VAR];
});

describe('serve: resync', () => {
  it('re-reads apps.d every resyncMs and applies what changed without any file event', async () => {
    process.env[VAR] = 'before.test';
    serve = await startServe({
      manifests: { 'crm.yaml': manifest('crm', `domains: ["\${${VAR}}"]\n`) },
      supervisor: { resyncMs: 300 },
    });
    const s = serve;
    expect((await s.request('/api/info', { host: 'before.test' })).body).toMatchObject({ name: 'crm' });

    process.env[VAR] = 'after.test';
    const moved = await waitFor(
      async () => {
        const answer = await s.request('/api/info', { host: 'after.test' });
        return answer.body?.name === 'crm' ? answer : undefined;
      },
      'the resync to route after.test to crm',
      5_000,
    );
    expect(moved.status).toBe(200);
    expect((await s.view('crm')).domains).toEqual(['after.test']);
  });
});
