import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  lstatSync,
  openSync,
  readlinkSync,
  readSync,
} from 'node:fs';
import { readdir } from 'node:fs/promises';
import { AppvisorError } from '../errors.js';
import { MAX_FILE_BYTES } from './limits.js';

/** A problem with a whole file (not with a node in it), with a 1-based position. */
export interface FileProblem {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** The text of a file, or why it cannot be used as YAML text. */
export type ReadResult =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly problem: FileProblem };

const IGNORED_SUFFIXES = ['~', '.swp', '.tmp'] as const;

/**
 * Whether a file name in the apps folder is a manifest: `*.yaml` or `*.yml`, not hidden
 * (leading `.`) and not an editor or temporary file (`~`, `.swp`, `.tmp`). The watcher uses
 * the same rule.
 */
export function isManifestFileName(name: string): boolean {
  if (name.startsWith('.')) return false;
  if (IGNORED_SUFFIXES.some((suffix) => name.endsWith(suffix))) return false;
  return name.endsWith('.yaml') || name.endsWith('.yml');
}

/** A manifest file as the folder listing shows it. */
export interface ListedFile {
  readonly name: string;
  /** Listed as a regular file (not a symbolic link, folder or FIFO): see {@link readTextFileSync}. */
  readonly regular: boolean;
}

/**
 * The manifest files directly in `dir` (subfolders are not read), sorted by name.
 * @throws AppvisorError CONFIG_INVALID when the folder is missing or unreadable.
 */
export async function listManifestFiles(dir: string, displayDir: string = dir): Promise<ListedFile[]> {
  let entries: Dirent[];
  try {
    // The types come with the listing at no extra system call.
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new AppvisorError('CONFIG_INVALID', { detail: folderProblem(err, displayDir) }, { cause: err });
  }
  const files: ListedFile[] = [];
  for (const entry of entries) {
    if (isManifestFileName(entry.name)) files.push({ name: entry.name, regular: entry.isFile() });
  }
  return files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function folderProblem(err: unknown, displayDir: string): string {
  switch (errnoCode(err)) {
    case 'ENOENT':
      return `apps folder ${displayDir} does not exist (set it with --dir, APPVISOR_APPS_DIR or appsDir in appvisor.yaml)`;
    case 'ENOTDIR':
      return `apps folder ${displayDir} is not a folder`;
    case 'EACCES':
    case 'EPERM':
      return `cannot read apps folder ${displayDir}: permission denied`;
    default:
      return `cannot read apps folder ${displayDir}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

const problemAtStart = (message: string): ReadResult => ({
  ok: false,
  problem: { line: 1, column: 1, message },
});

/** Where a small file listed as regular is read: one buffer for every such file, decoded at once. */
const scratch = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * Reads a file as UTF-8 text without trusting it: only regular files, at most `maxBytes`
 * (checked with fstat before reading), no NUL bytes, valid UTF-8. Never blocks on a FIFO.
 *
 * `listedAsRegular` (the folder listing says it is a regular file) saves the fstat: one read
 * into scratch space that comes back short of the space is the whole file, within the limit.
 * A longer file goes through fstat as any other. A file swapped for something else between
 * the listing and the open is read within the same bounds (a FIFO opened without blocking
 * reads as empty or fails); the watcher sees the swap and reloads.
 *
 * Synchronous on purpose: for small files the three or four system calls take a few
 * microseconds, while each asynchronous call costs far more main-thread time than that
 * (measured: about 60 µs against 5 µs per file on a 2-core machine). Callers bound the time
 * they hold the event loop by yielding between batches of files.
 */
export function readTextFileSync(
  path: string,
  maxBytes: number = MAX_FILE_BYTES,
  listedAsRegular = false,
): ReadResult {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO named x.yaml must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    return problemAtStart(openProblem(path, err));
  }
  try {
    if (listedAsRegular) {
      const room = Math.min(scratch.length, maxBytes + 1);
      const length = readSync(fd, scratch, 0, room, 0);
      if (length < room) return decodeText(scratch.subarray(0, length));
    }
    const stats = fstatSync(fd);
    if (stats.isDirectory()) {
      return problemAtStart(
        'this is a folder, not a manifest file (subfolders of the apps folder are not read)',
      );
    }
    if (!stats.isFile()) return problemAtStart('this is not a regular file');
    if (stats.size > maxBytes) return problemAtStart(tooBig(stats.size, maxBytes));
    // One byte over the limit tells a file that grew since fstat from one that did not. A file
    // caught mid-write may come back short; the watcher sees the write finish and reloads.
    const buffer = Buffer.allocUnsafe(Math.min(stats.size, maxBytes) + 1);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    if (length > maxBytes) return problemAtStart(tooBig(length, maxBytes));
    return decodeText(buffer.subarray(0, length));
  } catch (err) {
    return problemAtStart(`cannot read the file: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    closeSync(fd);
  }
}

function openProblem(path: string, err: unknown): string {
  const code = errnoCode(err);
  if (code === 'ENOENT') {
    try {
      if (lstatSync(path).isSymbolicLink()) {
        return `this is a symbolic link to a missing file (${readlinkSync(path)})`;
      }
    } catch {
      // Gone altogether: removed while the folder was being read.
    }
    return 'the file disappeared while it was being read';
  }
  if (code === 'ELOOP') return 'this is a symbolic link that loops back on itself';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot read the file: permission denied';
  return `cannot read the file: ${err instanceof Error ? err.message : String(err)}`;
}

function tooBig(size: number, maxBytes: number): string {
  return `the file is ${formatBytes(size)}; manifests may be at most ${formatBytes(maxBytes)}`;
}

function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (mib >= 1) return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB`;
  return `${Math.ceil(bytes / 1024)} KiB`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes bytes as UTF-8 text (a leading BOM is dropped), rejecting binary data and bad encodings. */
export function decodeText(bytes: Uint8Array): ReadResult {
  if (bytes.indexOf(0) !== -1) {
    return problemAtStart('the file contains NUL bytes: it looks like a binary file, not YAML text');
  }
  try {
    return { ok: true, text: utf8.decode(bytes) };
  } catch {
    const offset = firstInvalidUtf8(bytes);
    const { line, column } = bytePosition(bytes, offset);
    return {
      ok: false,
      problem: { line, column, message: 'the file is not valid UTF-8 text (save it as UTF-8)' },
    };
  }
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    const second = bytes[i + 1];
    if (second === undefined || second < lo || second > hi) return i;
    for (let k = 2; k <= need; k++) {
      const next = bytes[i + k];
      if (next === undefined || (next & 0xc0) !== 0x80) return i;
    }
    i += need + 1;
  }
  return Math.max(0, bytes.length - 1);
}

function bytePosition(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  const before = new TextDecoder('utf-8').decode(bytes.subarray(lineStart, offset));
  return { line, column: before.length + 1 };
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}
