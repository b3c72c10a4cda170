/**
 * Where isolated apps' Unix sockets live: `<dataDir>/run/<name>-<random>.sock`, or a short path
 * under the system's temp folder when that would pass the ~107-byte limit of a socket path; and
 * the sweep of sockets a killed supervisor left behind.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Unix socket paths are limited to about 107 bytes (sun_path). */
const MAX_SOCKET_PATH = 100;

/** A fresh socket path for app `name` in `dir` (or the temp folder when that is too long). */
export function socketPathFor(dir: string, name: string): string {
  const preferred = path.join(dir, `${name}-${randomBytes(4).toString('hex')}.sock`);
  if (Buffer.byteLength(preferred) <= MAX_SOCKET_PATH) return preferred;
  return path.join(os.tmpdir(), 'appvisor', `${randomBytes(6).toString('hex')}.sock`);
}

/**
 * Removes the sockets in `dir` that nothing listens on any more (left by a supervisor that was
 * killed with its workers). A socket something still answers on is left alone: it may be another
 * supervisor's on the same data folder.
 */
export async function sweepStaleSockets(dir: string): Promise<void> {
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.sock'));
  } catch {
    return;
  }
  await Promise.all(
    files.map(
      (file) =>
        new Promise<void>((resolve) => {
          const full = path.join(dir, file);
          const probe = connect(full);
          probe.once('connect', () => {
            probe.destroy();
            resolve();
          });
          probe.once('error', (err: NodeJS.ErrnoException) => {
            if (err.code === 'ECONNREFUSED') fs.rmSync(full, { force: true });
            resolve();
          });
        }),
    ),
  );
}
