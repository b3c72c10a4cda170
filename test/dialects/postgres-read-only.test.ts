/**
 * The read-only PostgreSQL client `plan` reads the state store with: a connection the server
 * ends while it is idle (a restart, pg_terminate_backend) is no unhandled 'error' that ends the
 * process, and the next query opens a new one.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openReadOnlyPool } from '../../src/dialects/postgres/read-only.js';
import { parseDatabaseUrl } from '../../src/dialects/registry.js';
import { postgres } from '../helpers/servers.js';

const server = await postgres();

describe.skipIf(!server.available)('postgres read-only client', () => {
  it('survives the server ending its idle connection', async () => {
    const client = openReadOnlyPool(parseDatabaseUrl(server.url), {});
    try {
      const [first] = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      try {
        await admin.query('SELECT pg_terminate_backend($1)', [first!.pid]);
      } finally {
        await admin.end();
      }
      // The pool hears of it while the connection is idle; without a listener that is fatal.
      await new Promise((r) => setTimeout(r, 200));
      const [next] = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(next!.pid).not.toBe(first!.pid);
    } finally {
      await client.close();
    }
  });
});
