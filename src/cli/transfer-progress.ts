/**
 * What `backup` and `restore` show of the bytes they move: a live line on a terminal while the
 * data is dumped and the archive written or read (bytes so far and the rate), and the figures
 * for the final line, counted where the bytes passed (src/ops/byte-count.ts).
 */
import type { OnTransferProgress, TransferProgress } from '../ops/byte-count.js';
import type { CliIO } from './common.js';
import { liveLine } from './live-line.js';

const PHASE_WORDS: Readonly<Record<TransferProgress['phase'], string>> = {
  dump: 'dumping the data',
  archive: 'writing the archive',
  read: 'reading the archive',
};

export interface TransferProgressLine {
  readonly onProgress: OnTransferProgress;
  /** Says what follows the byte count: e.g. the server restoring once the upload is sent. */
  say(text: string): void;
  /** The archive's bytes counted (written or read), 0 when none passed here. */
  archiveBytes(): number;
  /** Erases the live line (before the final line, or an error). */
  clear(): void;
}

export interface TransferProgressOptions {
  /** The archive's size when known (a restore), shown as `of N`. */
  readonly total?: number;
  /** No live line (JSON output is for scripts); the bytes are still counted. */
  readonly quiet?: boolean;
}

/** A live line headed `what` (e.g. `backing up crm`). */
export function transferProgress(
  io: CliIO,
  what: string,
  opts: TransferProgressOptions = {},
): TransferProgressLine {
  const { total } = opts;
  const line = liveLine(opts.quiet ? { write: () => true } : io.stdout, io.env);
  let phase: TransferProgress['phase'] | undefined;
  let phaseStart = performance.now();
  let archive = 0;
  return {
    onProgress(p) {
      if (p.phase !== phase) {
        phase = p.phase;
        phaseStart = performance.now();
      }
      if (p.phase !== 'dump') archive = p.bytes;
      const of = total !== undefined && p.phase === 'read' ? ` of ${formatBytes(total)}` : '';
      line.update(
        `${what}: ${PHASE_WORDS[p.phase]}, ${formatBytes(p.bytes)}${of} (${rate(p.bytes, performance.now() - phaseStart)})`,
      );
    },
    say(text) {
      line.update(`${what}: ${text}`);
    },
    archiveBytes: () => archive,
    clear: () => line.clear(),
  };
}

/** `12.3 MiB in 0.8 s (15.4 MiB/s)`. */
export function bytesInTime(bytes: number, ms: number): string {
  return `${formatBytes(bytes)} in ${(ms / 1000).toFixed(1)} s (${rate(bytes, ms)})`;
}

/** `15.4 MiB/s` (in the unit that suits it). */
export function rate(bytes: number, ms: number): string {
  return `${formatBytes(Math.round(bytes / Math.max(ms / 1000, 0.001)))}/s`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
