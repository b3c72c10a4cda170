/**
 * Child process for the sweep test: runs `appvisor apply` on the settings given as JSON in the
 * first argument, but stops dead between a database's creation (marked, under its temporary
 * name) and its move into place, prints `between create and rename`, and waits there for the
 * parent's SIGKILL: exactly what a crash at that point leaves behind.
 */
import fs from 'node:fs';
import pg from 'pg';
import pino from 'pino';
import { applyPlan } from '../../src/reconcile/commands.js';

const settings = JSON.parse(process.argv[2] ?? '');
const announce = (): void => {
  process.stdout.write('between create and rename\n');
};

// PostgreSQL: CREATE DATABASE _avtmp_…, COMMENT …, then this rename never happens.
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text;
  if (typeof text === 'string' && /^ALTER DATABASE .* RENAME TO /.test(text)) {
    announce();
    return new Promise(() => undefined);
  }
  return query.apply(this, args);
} as typeof pg.Client.prototype.query;

// SQLite: the hidden .tmp file is complete and marked; the link into place never happens.
fs.linkSync = (): void => {
  announce();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
};

await applyPlan(settings, { log: pino({ level: 'silent' }) });
process.stdout.write('apply finished: the interruption did not happen\n');
