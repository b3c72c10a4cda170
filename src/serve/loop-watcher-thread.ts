/**
 * The event-loop watcher's own thread (started by serve/loop-watcher.ts). It looks at the main
 * thread's heartbeat every pollMs; once the beat has not moved for longer than blockedMs it logs
 * one warning for that block, naming the app whose code is on the main thread's stack — while
 * the main thread is still blocked, which is the point: an endless loop never gives the main
 * thread a chance to log anything. The lines are written straight to fd 1, synchronously (a
 * worker's own `process.stdout` is relayed by the main thread's loop), formatted like the
 * supervisor's.
 */
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { type AppNamed, CELL, type LoopWatchData } from './loop-watch-cells.js';

const data = workerData as LoopWatchData;
const cells = new Int32Array(data.cells);
const runningApp = new Int32Array(data.runningApp);
const names = new Map<number, string>(data.names);

/** pino's number for warn; the supervisor's logger writes nothing below its level. */
const WARN = 40;
const LEVELS: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

type Warn = (fields: Record<string, unknown>, msg: string) => void;

/**
 * A JSON line as pino writes the supervisor's (log.ts: level, time, pid, the fields, msg),
 * written here by hand: pino would add ≈ 5 MB to the thread's ≈ 9 MB. On a terminal the
 * human-readable lines need pino-pretty anyway, so that case uses the supervisor's own logger.
 */
async function createWarn(): Promise<Warn> {
  const { level, pretty } = data.log;
  if (pretty) {
    const { createLogger } = await import('../log.js');
    const log = createLogger(data.log, 1);
    return (fields, msg) => log.warn(fields, msg);
  }
  if ((LEVELS[level] ?? Number.POSITIVE_INFINITY) > WARN) return () => undefined;
  return (fields, msg) => {
    const line = JSON.stringify({ level: WARN, time: Date.now(), pid: process.pid, ...fields, msg });
    writeOut(Buffer.from(`${line}\n`));
  };
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `bytes` to fd 1. A pipe there is non-blocking (libuv makes it so for the main
 * thread's stdout): a full pipe answers EAGAIN, and the line is tried again for up to a second
 * (as pino's own synchronous writer does); a closed one drops it.
 */
function writeOut(bytes: Buffer): void {
  let rest = bytes;
  for (let tries = 0; rest.length > 0 && tries < 100; ) {
    try {
      rest = rest.subarray(fs.writeSync(1, rest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      tries++;
      Atomics.wait(pause, 0, 0, 10);
    }
  }
}
const warn = await createWarn();

parentPort?.on('message', (named: AppNamed) => {
  names.set(named.id, named.app);
});

let seenBeat = Atomics.load(cells, CELL.beat);
let seenAt = performance.now();
let warned = false;

setInterval(() => {
  const beat = Atomics.load(cells, CELL.beat);
  const now = performance.now();
  if (beat !== seenBeat) {
    seenBeat = beat;
    seenAt = now;
    warned = false;
    return;
  }
  const ms = Math.round(now - seenAt);
  if (warned || ms <= data.blockedMs) return;
  warned = true;
  const id = Atomics.load(runningApp, 0);
  // An app scoped a moment ago may not have its name here yet (it comes as a message).
  const app = id === 0 ? undefined : (names.get(id) ?? `#${id}`);
  // For the main thread, which logs how long it lasted once it runs again.
  Atomics.store(cells, CELL.reportedApp, id);
  Atomics.store(cells, CELL.reportedBeat, beat);
  Atomics.store(cells, CELL.reported, 1);
  warn(
    { event: 'loop-blocked', app, ms },
    app === undefined
      ? `event loop blocked for ${ms} ms; no app's handler is on the stack (the supervisor's own code, or code an app scheduled: after an await, in a timer)`
      : `event loop blocked for ${ms} ms; app ${app} was running`,
  );
}, data.pollMs);
