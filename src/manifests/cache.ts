import path from 'node:path';
import type { FileCheck } from './check-file.js';

interface Entry {
  readonly text: string;
  /** The values the file's variables had when it was checked. */
  readonly env: ReadonlyMap<string, string | undefined>;
  readonly check: FileCheck;
}

/**
 * Remembers each file's check by its text and the values of the environment variables it
 * refers to, so that reloading a folder re-parses only the files that changed. A server
 * that reloads its apps folder on every change and on every resync keeps one.
 */
export class ManifestCache {
  readonly #entries = new Map<string, Entry>();

  /** The remembered check of `file` (an absolute path), if its text and variables are unchanged. */
  get(file: string, text: string, env: NodeJS.ProcessEnv): FileCheck | undefined {
    const entry = this.#entries.get(file);
    if (!entry || entry.text !== text) return undefined;
    for (const [name, value] of entry.env) if (env[name] !== value) return undefined;
    return entry.check;
  }

  set(file: string, text: string, env: NodeJS.ProcessEnv, check: FileCheck): void {
    const values = new Map(check.variables.map((name) => [name, env[name]] as const));
    this.#entries.set(file, { text, env: values, check });
  }

  /** Forgets the files of `dir` that are not in `present` (absolute paths). */
  prune(dir: string, present: ReadonlySet<string>): void {
    for (const file of this.#entries.keys()) {
      if (path.dirname(file) === dir && !present.has(file)) this.#entries.delete(file);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
