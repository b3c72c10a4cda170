import http from 'node:http';
import net from 'node:net';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createGateway } from '../../src/gateway/server.js';
import { deferred, FakeApps, request, slowHandler, startGateway } from './fake-apps.js';

function connect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
  });
}

describe('close', () => {
  it('lets an in-flight request finish, refuses new connections, and is idempotent', async () => {
    const release = deferred();
    let arrived = false;
    const apps = new FakeApps().add('slow', {
      handler: slowHandler(release.promise, () => (arrived = true)),
    });
    const { gateway, port } = await startGateway(apps);
    const agent = new http.Agent({ keepAlive: true });
    try {
      const inFlight = request(port, '/apps/slow/', { agent });
      await vi.waitFor(() => expect(arrived).toBe(true));

      const closing = gateway.close({ graceMs: 10_000 });
      expect(gateway.close()).toBe(closing);
      await expect(connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      let closed = false;
      void closing.then(() => (closed = true));

      release.resolve();
      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(answer.body).toBe('slow done');
      // The keep-alive connection the answer came on is closed right away, not after keepAliveTimeout.
      const started = Date.now();
      await closing;
      expect(closed).toBe(true);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(gateway.inFlight).toBe(0);
    } finally {
      agent.destroy();
    }
  });

  it('closes idle keep-alive connections at once', async () => {
    const { gateway, port } = await startGateway(new FakeApps().add('crm'), {
      timeouts: { keepAliveMs: 60_000 },
    });
    const agent = new http.Agent({ keepAlive: true });
    try {
      expect((await request(port, '/apps/crm/', { agent })).status).toBe(200);
      const started = Date.now();
      await gateway.close({ graceMs: 20_000 });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      agent.destroy();
    }
  });

  it('destroys what is still open once the grace period is over', async () => {
    const never = new Promise<void>(() => {});
    let arrived = false;
    const apps = new FakeApps().add('stuck', { handler: slowHandler(never, () => (arrived = true)) });
    const { gateway, port } = await startGateway(apps);
    const stuck = request(port, '/apps/stuck/');
    await vi.waitFor(() => expect(arrived).toBe(true));
    await gateway.close({ graceMs: 100 });
    await expect(stuck).rejects.toThrow(/socket hang up|ECONNRESET/);
    await vi.waitFor(() => expect(gateway.inFlight).toBe(0));
  });

  it('resolves when the server never listened', async () => {
    const gateway = createGateway({
      apps: new FakeApps(),
      supervisor: () => {},
      log: pino({ level: 'silent' }),
    });
    await expect(gateway.close()).resolves.toBeUndefined();
  });
});
