/**
 * Counting the bytes of a backup or restore where they pass (the dump, the archive written, the
 * archive read), so what a progress line shows is what has moved, not a guess from a file size.
 */
import { Transform } from 'node:stream';

/** A phase of a backup or restore, and its bytes so far. */
export interface TransferProgress {
  /** `dump`: the data copied out of its database; `archive`: the .tar.gz written; `read`: read. */
  readonly phase: 'dump' | 'archive' | 'read';
  /** Bytes of this phase so far. */
  readonly bytes: number;
}

/** Told of each chunk as it passes (called often: it should only note the figure). */
export type OnTransferProgress = (progress: TransferProgress) => void;

/** A pass-through stream that reports the bytes of `phase` seen so far, chunk by chunk. */
export function byteCounter(
  phase: TransferProgress['phase'],
  report: OnTransferProgress | undefined,
): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      report?.({ phase, bytes });
      cb(null, chunk);
    },
  });
}
