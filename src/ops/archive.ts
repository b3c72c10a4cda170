/**
 * The backup archive (SPEC §8.4): a `.tar.gz` of `meta.json` (first), `manifest.yaml`, the data
 * member and `secret.json`, written and read as streams (tar-stream + node:zlib): a member is
 * never held in memory whole, whatever the size of the database.
 *
 * `meta.json` carries a sha256 per other member; gzip's own CRC-32 covers every byte of the tar
 * stream, meta.json included, and the reader checks the gzip header byte by byte, so any change
 * to what the archive holds is refused. (Deflate can encode the same bytes more than one way: a
 * flip that turns one encoding of a run of zeros into another decodes to the very same tar
 * stream, and such an archive restores exactly the backup.) The reader extracts into a folder
 * while hashing and compares at the end: nothing is restored from an archive before all of it
 * was checked.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { AppvisorError, messageOf } from '../errors.js';
import type { Dialect } from '../providers/provider.js';
import { byteCounter, type OnTransferProgress } from './byte-count.js';

export const ARCHIVE_FORMAT_VERSION = 1;
export const META_MEMBER = 'meta.json';
export const MANIFEST_MEMBER = 'manifest.yaml';
export const SECRET_MEMBER = 'secret.json';

/** What `meta.json` says. */
export interface ArchiveMeta {
  readonly formatVersion: typeof ARCHIVE_FORMAT_VERSION;
  /** The app backed up. */
  readonly app: string;
  readonly dialect: Dialect;
  /** A database of its own, or (PostgreSQL `new-schema`) a schema. */
  readonly kind: 'database' | 'schema';
  /** The data member's name (`data.sqlite`, `data.pgdump`, `data.sql`). */
  readonly data: string;
  /** The app's data version (its applied migrations) when it was backed up. */
  readonly dataVersion: number;
  /** The application that owns the data, and its code version then. */
  readonly application: { readonly name: string; readonly version: number };
  readonly createdAt: string;
  /** Every other member, by name, in the archive's order. */
  readonly members: Readonly<Record<string, { readonly sha256: string; readonly bytes: number }>>;
}

/** `secret.json`: the app's JWT secret sealed under the master key (aad: the app's name). */
export type ArchivedSecret =
  | { readonly mode: 'own'; readonly sealed: string }
  /** The app signs with the main app's secret: there is nothing of its own to keep. */
  | { readonly mode: 'shared' };

/** A member to write: a file on disk (streamed) or a small text. */
export type MemberSource =
  | { readonly name: string; readonly file: string }
  | { readonly name: string; readonly text: string };

const MEMBER_NAME = /^[a-z][a-z0-9_-]*\.[a-z]+$/;
/** Modes of the gzip header as node's zlib writes it on Unix, macOS and Windows. */
const GZIP_OS = new Set([0x03, 0x07, 0x0a, 0x0b, 0x13]);

/**
 * Writes the archive to `file` (which should be a temporary name: the caller renames it when
 * the backup as a whole succeeded). Members are hashed first, then streamed into the tar.
 */
export async function writeArchive(
  file: string,
  meta: Omit<ArchiveMeta, 'members'>,
  members: readonly MemberSource[],
  /** Told of the archive's bytes as they are written (after gzip: the file's own bytes). */
  onProgress?: OnTransferProgress,
): Promise<ArchiveMeta> {
  const hashed: Record<string, { sha256: string; bytes: number }> = {};
  for (const m of members) {
    if (!MEMBER_NAME.test(m.name) || m.name === META_MEMBER || m.name in hashed) {
      throw new Error(`bad archive member name ${m.name}`);
    }
    hashed[m.name] = 'file' in m ? await hashFile(m.file) : hashText(m.text);
  }
  const full: ArchiveMeta = { ...meta, members: hashed };
  const pack = tar.pack();
  const mtime = new Date(meta.createdAt);
  // Level 1: about half the time of the default level 6 on dumps, for a slightly larger archive
  // (bench/backup.ts); a backup is taken while the app serves, and is mostly waited for.
  const written = pipeline(
    pack,
    zlib.createGzip({ level: 1 }),
    byteCounter('archive', onProgress),
    createWriteStream(file, { mode: 0o600 }),
  );
  const feed = async (): Promise<void> => {
    await addText(pack, META_MEMBER, `${JSON.stringify(full, null, 2)}\n`, mtime);
    for (const m of members) {
      if ('text' in m) await addText(pack, m.name, m.text, mtime);
      else await addFile(pack, m.name, m.file, hashed[m.name]!.bytes, mtime);
    }
    pack.finalize();
  };
  try {
    await Promise.all([feed(), written]);
  } catch (err) {
    pack.destroy();
    await written.catch(() => undefined);
    throw err;
  }
  return full;
}

function addText(pack: tar.Pack, name: string, text: string, mtime: Date): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ name, mode: 0o600, mtime }, Buffer.from(text, 'utf8'), (err) =>
      err ? reject(err) : resolve(),
    );
  });
}

async function addFile(pack: tar.Pack, name: string, file: string, size: number, mtime: Date): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    const entry = pack.entry({ name, size, mode: 0o600, mtime }, (err) => (err ? reject(err) : resolve()));
    // A file that changed size since it was hashed is caught by tar-stream (size mismatch).
    pipeline(createReadStream(file), entry).catch(reject);
  });
  await done;
}

async function hashFile(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

function hashText(text: string): { sha256: string; bytes: number } {
  const buf = Buffer.from(text, 'utf8');
  return { sha256: createHash('sha256').update(buf).digest('hex'), bytes: buf.length };
}

/** An archive that was read and checked whole: its meta and where its members now are. */
export interface VerifiedArchive {
  readonly meta: ArchiveMeta;
  /** The folder the members were extracted into (the caller removes it). */
  readonly dir: string;
  /** A member's extracted file. */
  pathOf(member: string): string;
  readText(member: string): Promise<string>;
}

/**
 * Extracts `file` into `dir` (an empty folder the caller owns) while hashing every member, then
 * checks the members against meta.json: names, sizes, sha256, nothing missing, nothing extra.
 * @throws AppvisorError ARCHIVE_INVALID naming the file and what is wrong
 */
export async function readArchive(
  file: string,
  dir: string,
  /** Told of the archive's bytes as they are read (before gunzip: the file's own bytes). */
  onProgress?: OnTransferProgress,
): Promise<VerifiedArchive> {
  const invalid = (detail: string): AppvisorError => new AppvisorError('ARCHIVE_INVALID', { file, detail });
  await checkGzipHeader(file, invalid);
  const seen = new Map<string, { sha256: string; bytes: number }>();
  const extract = tar.extract();
  const reading = pipeline(
    createReadStream(file),
    byteCounter('read', onProgress),
    zlib.createGunzip(),
    extract,
  );
  try {
    await Promise.all([
      reading,
      (async () => {
        for await (const entry of extract) {
          const { name, type } = entry.header;
          if (type !== 'file') throw invalid(`member ${name} is a ${type}, not a file`);
          if (!MEMBER_NAME.test(name)) throw invalid(`unexpected member name ${JSON.stringify(name)}`);
          if (seen.has(name)) throw invalid(`member ${name} appears twice`);
          const hash = createHash('sha256');
          let bytes = 0;
          const tee = new Transform({
            transform(chunk: Buffer, _enc, cb) {
              hash.update(chunk);
              bytes += chunk.length;
              cb(null, chunk);
            },
          });
          await pipeline(entry, tee, createWriteStream(path.join(dir, name), { mode: 0o600 }));
          seen.set(name, { sha256: hash.digest('hex'), bytes });
        }
      })(),
    ]);
  } catch (err) {
    extract.destroy();
    await reading.catch(() => undefined);
    if (err instanceof AppvisorError) throw err;
    throw invalid(`it is not a complete .tar.gz archive (${messageOf(err)})`);
  }
  if (!seen.has(META_MEMBER)) throw invalid(`it has no ${META_MEMBER}`);
  const meta = parseMeta(await fs.readFile(path.join(dir, META_MEMBER), 'utf8'), invalid);
  for (const [name, want] of Object.entries(meta.members)) {
    const got = seen.get(name);
    if (!got) throw invalid(`member ${name} is missing`);
    if (got.bytes !== want.bytes || got.sha256 !== want.sha256) {
      throw invalid(`member ${name} does not match its sha256 in ${META_MEMBER}`);
    }
  }
  for (const name of seen.keys()) {
    if (name !== META_MEMBER && !(name in meta.members)) throw invalid(`unexpected member ${name}`);
  }
  for (const required of [MANIFEST_MEMBER, SECRET_MEMBER, meta.data]) {
    if (!(required in meta.members)) throw invalid(`it has no ${required}`);
  }
  const pathOf = (member: string): string => path.join(dir, member);
  return { meta, dir, pathOf, readText: (member) => fs.readFile(pathOf(member), 'utf8') };
}

/**
 * The archive's `meta.json` alone (its first member), read without extracting the rest and
 * **not verified**: to learn which app an upload is for before taking that app's lock. The
 * restore then verifies the whole archive with {@link readArchive}.
 * @throws AppvisorError ARCHIVE_INVALID
 */
export async function readArchiveMeta(file: string): Promise<ArchiveMeta> {
  const invalid = (detail: string): AppvisorError => new AppvisorError('ARCHIVE_INVALID', { file, detail });
  await checkGzipHeader(file, invalid);
  const source = createReadStream(file);
  const extract = tar.extract();
  const reading = pipeline(source, zlib.createGunzip(), extract).catch(() => undefined);
  try {
    for await (const entry of extract) {
      if (entry.header.name !== META_MEMBER) throw invalid(`its first member is not ${META_MEMBER}`);
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > 1 << 20) throw invalid(`${META_MEMBER} is over 1 MiB`);
        chunks.push(chunk);
      }
      return parseMeta(Buffer.concat(chunks).toString('utf8'), invalid);
    }
    throw invalid(`it has no ${META_MEMBER}`);
  } catch (err) {
    if (err instanceof AppvisorError) throw err;
    throw invalid(`it is not a complete .tar.gz archive (${messageOf(err)})`);
  } finally {
    extract.destroy();
    source.destroy();
    await reading;
  }
}

/**
 * The gzip header is not covered by gzip's CRC: checked here as written (no optional fields,
 * no file time), so a damaged header byte is refused like any other.
 */
async function checkGzipHeader(file: string, invalid: (detail: string) => AppvisorError): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    throw new AppvisorError('ARCHIVE_INVALID', { file, detail: messageOf(err) });
  }
  try {
    const head = Buffer.alloc(10);
    const { bytesRead } = await handle.read(head, 0, 10, 0);
    const ok =
      bytesRead === 10 &&
      head[0] === 0x1f &&
      head[1] === 0x8b &&
      head[2] === 0x08 &&
      head[3] === 0 &&
      head.readUInt32LE(4) === 0 &&
      (head[8] === 0 || head[8] === 2 || head[8] === 4) &&
      GZIP_OS.has(head[9]!);
    if (!ok) throw invalid('its gzip header is not one appvisor writes (damaged, or not a backup)');
  } finally {
    await handle.close();
  }
}

function parseMeta(text: string, invalid: (detail: string) => AppvisorError): ArchiveMeta {
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    throw invalid(`${META_MEMBER} is not JSON`);
  }
  const m = meta as Partial<Record<keyof ArchiveMeta, unknown>>;
  if (typeof meta !== 'object' || meta === null) throw invalid(`${META_MEMBER} is not an object`);
  if (m.formatVersion !== ARCHIVE_FORMAT_VERSION) {
    throw invalid(`format version ${String(m.formatVersion)} is not ${ARCHIVE_FORMAT_VERSION}`);
  }
  const app = m.application as { name?: unknown; version?: unknown } | undefined;
  const members = m.members as Record<string, { sha256?: unknown; bytes?: unknown }> | undefined;
  const ok =
    typeof m.app === 'string' &&
    (m.dialect === 'sqlite' || m.dialect === 'postgres' || m.dialect === 'mysql') &&
    (m.kind === 'database' || m.kind === 'schema') &&
    typeof m.data === 'string' &&
    Number.isInteger(m.dataVersion) &&
    typeof app?.name === 'string' &&
    Number.isInteger(app.version) &&
    typeof m.createdAt === 'string' &&
    typeof members === 'object' &&
    members !== null &&
    Object.entries(members).every(
      ([name, v]) =>
        MEMBER_NAME.test(name) &&
        typeof v?.sha256 === 'string' &&
        /^[0-9a-f]{64}$/.test(v.sha256) &&
        Number.isInteger(v.bytes),
    );
  if (!ok) throw invalid(`${META_MEMBER} lacks a field or has one of the wrong type`);
  return meta as ArchiveMeta;
}
