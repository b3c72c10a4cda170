/**
 * Change announcements between replicas: which apps' records changed, and which replica changed
 * them (so it can ignore its own). Sent with PostgreSQL NOTIFY, whose payload must stay under
 * 8,000 bytes: it carries names only (never a record), split into as many payloads as needed.
 * Only a hint that makes a change arrive fast; the poll of record versions is what is relied on.
 */
export const CHANGES_CHANNEL = 'appvisor_changes';

/** Well under NOTIFY's 8,000-byte limit, whatever is added around the payload. */
const MAX_PAYLOAD_BYTES = 7_000;

export interface ChangeAnnouncement {
  /** The replica that wrote the records ('' when the writer is no replica, e.g. `apply`). */
  readonly origin: string;
  readonly names: readonly string[];
}

/** The payloads announcing `names`, each a JSON object `{"o": origin, "n": [names]}` under the limit. */
export function encodeChanges(origin: string, names: readonly string[]): string[] {
  const payloads: string[] = [];
  let batch: string[] = [];
  const encode = (n: readonly string[]): string => JSON.stringify({ o: origin, n });
  for (const name of names) {
    if (batch.length > 0 && Buffer.byteLength(encode([...batch, name])) > MAX_PAYLOAD_BYTES) {
      payloads.push(encode(batch));
      batch = [];
    }
    batch.push(name);
  }
  if (batch.length > 0) payloads.push(encode(batch));
  return payloads;
}

/** A payload read back; undefined for one this code did not write (another tool on the channel). */
export function decodeChanges(payload: string): ChangeAnnouncement | undefined {
  try {
    const value = JSON.parse(payload) as { o?: unknown; n?: unknown };
    if (typeof value.o !== 'string' || !Array.isArray(value.n)) return undefined;
    const names = value.n.filter((n): n is string => typeof n === 'string');
    return { origin: value.o, names };
  } catch {
    return undefined;
  }
}
