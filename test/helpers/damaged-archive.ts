/**
 * A backup archive with one byte flipped so that what it holds changes. Not simply the middle
 * byte: deflate has more than one encoding of a run (a match into zeros at another distance
 * decodes to the same zeros), so about one flip in 25 leaves every byte the archive holds as it
 * was, and such an archive restores exactly the backup (test/ops/archive.test.ts proves both).
 */
import zlib from 'node:zlib';

/** What gzip decodes `bytes` to, or undefined when it does not decode. */
function decoded(bytes: Buffer): Buffer | undefined {
  try {
    return zlib.gunzipSync(bytes);
  } catch {
    return undefined;
  }
}

/** A copy of `archive` with the first byte from its middle on whose flip changes what it holds. */
export function damagedArchive(archive: Buffer): Buffer {
  const original = decoded(archive);
  if (!original) throw new Error('the archive to damage does not decode');
  for (let i = Math.floor(archive.length / 2); i < archive.length; i++) {
    const copy = Buffer.from(archive);
    copy[i] = copy[i]! ^ 0x01;
    if (!decoded(copy)?.equals(original)) return copy;
  }
  throw new Error('no byte of the archive changes what it holds');
}
