import path from 'node:path';
import type { ManifestCache } from './cache.js';
import { checkManifestText, type FileCheck } from './check-file.js';
import { type CrossCheckEntry, crossCheck } from './cross-check.js';
import { decodeText, listManifestFiles, readTextFileSync } from './files.js';
import { MAX_ERRORS_PER_FILE, MAX_FILE_BYTES, YIELD_EVERY } from './limits.js';
import type { InvalidFile, LoadedManifest, ManifestError, ManifestSet } from './types.js';

/** Options of {@link loadManifests}. */
export interface LoadOptions {
  /** Source of `${VAR}` values. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * The folder as the user would type it; `file` in results is this joined with the file name.
   * @default `dir` relative to the working directory (absolute when it lies outside it)
   */
  readonly displayDir?: string;
  /** Reuse the checks of unchanged files from earlier loads. @default no cache */
  readonly cache?: ManifestCache;
  /**
   * Let well-formed files skip the position-keeping parse (the results are the same either
   * way); false sends every file through it.
   * @default true
   */
  readonly fastPath?: boolean;
}

/** One file's outcome on its own: a checked text, or a file that could not be read as text. */
type Checked = { readonly file: string } & (
  | { readonly check: FileCheck; readonly error?: undefined }
  | { readonly check?: undefined; readonly error: ManifestError }
);

/**
 * Reads every manifest directly in `dir` (SPEC §3 file rules), checks each file and then the
 * files against each other. A bad file never stops the others from loading.
 * @throws AppvisorError CONFIG_INVALID when `dir` is missing or is not a readable folder.
 */
export async function loadManifests(dir: string, opts: LoadOptions = {}): Promise<ManifestSet> {
  const env = opts.env ?? process.env;
  const absolute = path.resolve(dir);
  const displayDir = opts.displayDir ?? defaultDisplayDir(absolute);
  const files = await listManifestFiles(absolute, displayDir);
  // A listed name is one path segment: joined by hand, as path.join would, without its
  // normalising every time.
  const displayPrefix = withSeparator(displayDir);
  const absolutePrefix = withSeparator(absolute);

  const cache = opts.cache;
  const checked: Checked[] = [];
  // Only a cache needs to know which files are still there.
  const present = cache && new Set<string>();
  for (const [index, { name, regular }] of files.entries()) {
    // Reading and parsing are synchronous; yielding between batches keeps a server that
    // reloads a large folder responsive.
    if (index > 0 && index % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const file = displayPrefix + name;
    const full = absolutePrefix + name;
    const read = readTextFileSync(full, MAX_FILE_BYTES, regular);
    if (!read.ok) {
      checked.push({ file, error: { file, ...read.problem } });
      continue;
    }
    present?.add(full);
    let check = cache?.get(full, read.text, env);
    if (!check) {
      check = checkManifestText(read.text, env, opts);
      cache?.set(full, read.text, env, check);
    }
    checked.push({ file, check });
  }
  if (present) cache?.prune(absolute, present);
  return assemble(absolute, checked);
}

/** The outcome of checking one file on its own (no cross-file checks). */
export type FileResult =
  | { readonly ok: true; readonly app: LoadedManifest }
  | { readonly ok: false; readonly invalid: InvalidFile };

/**
 * Checks one manifest's text on its own (the file rules on size and content apply; the
 * checks across files do not). `file` is used in the errors as given.
 */
export function validateManifestText(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): FileResult {
  const bytes = Buffer.from(text, 'utf8');
  const decoded =
    bytes.length > MAX_FILE_BYTES
      ? {
          ok: false as const,
          problem: {
            line: 1,
            column: 1,
            message: `the file is larger than ${MAX_FILE_BYTES / (1024 * 1024)} MiB, the limit for manifests`,
          },
        }
      : decodeText(bytes);
  const set = assemble('.', [
    decoded.ok
      ? { file, check: checkManifestText(decoded.text, env) }
      : { file, error: { file, ...decoded.problem } },
  ]);
  const app = set.apps[0];
  return app ? { ok: true, app } : { ok: false, invalid: set.invalid[0]! };
}

function assemble(dir: string, checked: readonly Checked[]): ManifestSet {
  const entries: CrossCheckEntry[] = [];
  for (const { file, check } of checked) {
    if (check) entries.push({ file, name: check.name, manifest: check.manifest, spots: check.spots });
  }
  const cross = crossCheck(entries);
  const apps: LoadedManifest[] = [];
  const invalid: InvalidFile[] = [];
  for (const c of checked) {
    if (!c.check) {
      invalid.push({ file: c.file, errors: [c.error] });
      continue;
    }
    const { manifest, hash, problems: own } = c.check;
    const conflicts = cross.get(c.file);
    if (manifest && hash && own.length === 0 && conflicts === undefined) {
      apps.push(Object.freeze({ file: c.file, manifest, hash }));
    } else {
      const problems = [...own, ...(conflicts ?? [])];
      const errors = Object.freeze(capped(problems.map((problem) => ({ file: c.file, ...problem }))));
      const name = c.check.name;
      invalid.push(
        Object.freeze(name === undefined ? { file: c.file, errors } : { file: c.file, name, errors }),
      );
    }
  }
  return Object.freeze({ dir, apps: Object.freeze(apps), invalid: Object.freeze(invalid) });
}

/** Sorted by position, at most MAX_ERRORS_PER_FILE, the last one saying how many more there are. */
function capped(errors: ManifestError[]): ManifestError[] {
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  if (errors.length <= MAX_ERRORS_PER_FILE) return errors;
  const rest = errors.length - (MAX_ERRORS_PER_FILE - 1);
  const next = errors[MAX_ERRORS_PER_FILE - 1]!;
  return [
    ...errors.slice(0, MAX_ERRORS_PER_FILE - 1),
    { ...next, message: `${rest} more problems from here on (fix the ones above first)` },
  ];
}

/** What path.join(dir, name) puts before a plain file name: `dir/`, or nothing for `.`. */
function withSeparator(dir: string): string {
  return path.join(dir, '_').slice(0, -1);
}

function defaultDisplayDir(absolute: string): string {
  const relative = path.relative(process.cwd(), absolute);
  if (relative === '') return '.';
  return relative.startsWith('..') || path.isAbsolute(relative) ? absolute : relative;
}

/** Every error of a set, sorted by file, line and column (as `validate` prints them). */
export function allErrors(set: ManifestSet): ManifestError[] {
  return set.invalid
    .flatMap((file) => file.errors)
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
}
