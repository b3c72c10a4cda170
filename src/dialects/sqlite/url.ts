import path from 'node:path';
import { AppvisorError } from '../../errors.js';
import type { DatabaseUrl } from '../url.js';

/** `sqlite:data/main.sqlite`, `sqlite:/abs/file.sqlite`, `sqlite:///abs/file.sqlite`, `sqlite::memory:`. */
export function parseSqliteUrl(url: string, scheme: string, cwd: string): DatabaseUrl {
  let file = url.slice(scheme.length);
  if (file.startsWith('//')) file = file.slice(2);
  if (file === '') throw new AppvisorError('CONFIG_INVALID', { detail: `database URL ${url} names no file` });
  const filename = file === ':memory:' ? file : path.resolve(cwd, file);
  return { dialect: 'sqlite', url, redacted: `sqlite:${filename}`, filename };
}

/** `sqlite:data/x.sqlite` → `sqlite:/abs/data/x.sqlite` (relative to `cwd`). */
export function resolveSqliteUrl(url: string, cwd: string): string {
  let file = url.slice('sqlite:'.length);
  if (file === ':memory:') return url;
  // sqlite:///abs/path is the URL spelling of sqlite:/abs/path.
  if (file.startsWith('//')) file = file.slice(2);
  return `sqlite:${path.resolve(cwd, file)}`;
}

/** The "server" of SQLite app databases: the data folder that holds their files (see provider.ts). */
export function sqliteServer(dataDir: string): string {
  return `sqlite:${path.resolve(dataDir)}`;
}
