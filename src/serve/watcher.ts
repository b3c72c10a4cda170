import path from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import type { Logger } from 'pino';
import { isManifestFileName } from '../manifests/files.js';

export interface ManifestWatcher {
  /** Resolves once the initial scan is done. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Watches the apps folder itself (no globs, no subfolders) and calls `onChange` once per burst
 * of events (editors' atomic saves and `git checkout` arrive as many events). The caller
 * re-reads the whole folder: events only say "something changed", never what the state is.
 */
export function watchManifests(
  dir: string,
  onChange: () => void,
  options: { readonly log: Logger; readonly debounceMs?: number },
): ManifestWatcher {
  const debounceMs = options.debounceMs ?? 75;
  let timer: NodeJS.Timeout | undefined;
  const changed = (file: string): void => {
    if (path.dirname(path.resolve(file)) !== path.resolve(dir) || !isManifestFileName(path.basename(file)))
      return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  const watcher: FSWatcher = watch(dir, {
    depth: 0,
    ignoreInitial: true,
    atomic: true,
    awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 10 },
  });
  watcher.on('add', changed).on('change', changed).on('unlink', changed);
  watcher.on('error', (err) => options.log.error({ err: String(err) }, 'manifest watcher error'));
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  let closing: Promise<void> | undefined;
  return {
    ready,
    close() {
      closing ??= (async () => {
        clearTimeout(timer);
        await watcher.close();
      })();
      return closing;
    },
  };
}
