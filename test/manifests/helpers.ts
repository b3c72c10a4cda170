import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A minimal valid manifest for `name`, plus extra YAML lines. */
export function manifest(name: string, ...extra: string[]): string {
  return ['apiVersion: appvisor/v1', 'kind: App', `name: ${name}`, ...extra, ''].join('\n');
}

/** A fresh temp folder; `cleanup` removes it. */
export async function tempDir(
  prefix = 'appvisor-test-',
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes files (name → content) into `dir`. */
export async function writeFiles(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  await Promise.all(Object.entries(files).map(([name, content]) => writeFile(path.join(dir, name), content)));
}
