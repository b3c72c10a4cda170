/**
 * Requests reach an isolated app as they reach a shared one (SPEC §6, §8.3): the same url with
 * the prefix stripped, the same headers with X-Forwarded-Prefix, the same custom-domain routing,
 * WebSocket upgrades echoed through, and large bodies streamed both ways.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { ADMIN_TOKEN, type Serve, startServe } from '../../serve/harness.js';
import { FIXTURE, isolated, json, openWebSocket, raw } from './helpers.js';

let serve: Serve;

beforeAll(async () => {
  serve = await startServe({
    app: FIXTURE,
    manifests: {
      's.yaml': isolated('s', 'shared', 'domains: [s.example.test]\n'),
      'w.yaml': isolated('w', 'worker', 'domains: [w.example.test]\n'),
      'p.yaml': isolated('p', 'process', 'domains: [p.example.test]\n'),
    },
  });
}, 60_000);

afterAll(async () => {
  await serve?.close();
});

/** What the app saw of a request, less what belongs to each connection. */
function seen(answer: Awaited<ReturnType<typeof raw>>): unknown {
  const body = json(answer) as {
    url: string;
    method: string;
    headers: Record<string, string>;
    basePath: string;
  };
  const { connection: _c, ...headers } = body.headers;
  return { ...body, headers };
}

describe('appvisor status', () => {
  it('shows where an isolated app runs and its memory beside its status', async () => {
    await raw(serve.sup.url, '/apps/w/hello');
    await raw(serve.sup.url, '/apps/p/hello');
    await raw(serve.sup.url, '/apps/s/hello');
    const { code, stdout } = await runCli(['status', '--url', serve.sup.url], {
      cwd: serve.dir,
      env: { APPVISOR_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    expect(code).toBe(0);
    const row = (name: string) => stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? '';
    expect(row('w')).toMatch(/^w +running \[worker, \d+ MiB\] /);
    expect(row('p')).toMatch(/^p +running \[process, \d+ MiB\] /);
    expect(row('s')).toMatch(/^s +running +1\/1 /);
  });
});

describe.each(['w', 'p'] as const)('the %s app', (app) => {
  it('sees the url, method and headers a shared app sees, under its prefix and on its domain', async () => {
    const headers = { 'x-custom': 'one', 'x-forwarded-prefix': '/forged', accept: 'application/json' };
    const viaPrefix = seen(
      await raw(serve.sup.url, `/apps/${app}/request?q=1`, { method: 'DELETE', headers }),
    );
    const shared = seen(await raw(serve.sup.url, '/apps/s/request?q=1', { method: 'DELETE', headers }));
    expect(viaPrefix).toMatchObject({ url: '/request?q=1', method: 'DELETE', basePath: `/apps/${app}` });
    const { 'x-forwarded-prefix': prefix, ...appHeaders } = (viaPrefix as { headers: Record<string, string> })
      .headers;
    const { 'x-forwarded-prefix': sharedPrefix, ...sharedHeaders } = (
      shared as { headers: Record<string, string> }
    ).headers;
    expect(appHeaders).toEqual(sharedHeaders);
    expect(prefix).toBe(`/apps/${app}`);
    expect(sharedPrefix).toBe('/apps/s');
    // On its custom domain: at the root, no prefix (a forged one is dropped), as shared.
    const onDomain = seen(
      await raw(serve.sup.url, '/request', { headers: { ...headers, host: `${app}.example.test` } }),
    );
    const sharedDomain = seen(
      await raw(serve.sup.url, '/request', { headers: { ...headers, host: 's.example.test' } }),
    );
    expect(onDomain).toMatchObject({ url: '/request' });
    const { host: h1, ...domainHeaders } = (onDomain as { headers: Record<string, string> }).headers;
    const { host: h2, ...sharedDomainHeaders } = (sharedDomain as { headers: Record<string, string> })
      .headers;
    expect(h1).toBe(`${app}.example.test`);
    expect(h2).toBe('s.example.test');
    expect(domainHeaders).toEqual(sharedDomainHeaders);
    expect(domainHeaders['x-forwarded-prefix']).toBeUndefined();
  });

  it('echoes over a WebSocket, with the same url and prefix as a shared app', async () => {
    const ws = await openWebSocket(serve.sup.url, `/apps/${app}/socket`);
    try {
      expect(ws.headers['x-seen-url']).toBe('/socket');
      expect(ws.headers['x-seen-prefix']).toBe(`/apps/${app}`);
      expect(await ws.send('one')).toBe('echo:one');
      expect(await ws.send('two'.repeat(100))).toBe(`echo:${'two'.repeat(100)}`);
    } finally {
      ws.close();
    }
    const onDomain = await openWebSocket(serve.sup.url, '/socket', { host: `${app}.example.test` });
    try {
      expect(onDomain.headers['x-seen-prefix']).toBe('');
      expect(await onDomain.send('three')).toBe('echo:three');
    } finally {
      onDomain.close();
    }
  });

  it('streams a large body up and one down, byte for byte', async () => {
    const size = 24 * 1024 * 1024;
    const hash = crypto.createHash('sha256');
    async function* body(): AsyncIterable<Buffer> {
      for (let sent = 0; sent < size; sent += 256 * 1024) {
        const chunk = crypto.randomBytes(256 * 1024);
        hash.update(chunk);
        yield chunk;
      }
    }
    const echoed = await raw(serve.sup.url, `/apps/${app}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    expect(echoed.status).toBe(200);
    expect(echoed.body.length).toBe(size);
    expect(crypto.createHash('sha256').update(echoed.body).digest('hex')).toBe(hash.digest('hex'));
    const big = await raw(serve.sup.url, `/apps/${app}/big?mb=32`);
    expect(big.status).toBe(200);
    expect(big.headers['content-length']).toBe(String(32 * 1024 * 1024));
    expect(big.body.length).toBe(32 * 1024 * 1024);
    expect(big.body.every((b) => b === 7)).toBe(true);
  }, 30_000);
});
