import { existsSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendCode } from './respond.js';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/**
 * Headers of every UI file. The CSP allows only the page's own files: no inline script or
 * style, no CDN, and no framing (the page has Start/Stop buttons worth clickjacking).
 */
export const UI_HEADERS = {
  'content-security-policy':
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
} as const;

/**
 * The UI folder shipped next to this module. `tsc` does not copy HTML into `dist/`, so a
 * build run from `dist/admin/` falls back to the sources' `src/admin/ui/`.
 */
export function defaultUiDir(): string {
  const here = fileURLToPath(new URL('./ui/', import.meta.url));
  const fromDist = fileURLToPath(new URL('../../src/admin/ui/', import.meta.url));
  return existsSync(here) || !existsSync(fromDist) ? here : fromDist;
}

/**
 * Whether `segment` (already percent-decoded) may be part of a UI file path: no empty,
 * `.`/`..` or hidden names, no separators, no NUL.
 */
function safeSegment(segment: string): boolean {
  return segment !== '' && !segment.startsWith('.') && !/[/\\\0]/.test(segment);
}

/** Rewrites a file's bytes as they are served (the same bytes in, the same bytes out). */
export type FileTransform = (body: Buffer, path: string) => Buffer;

/** Serves files of one folder, and nothing outside it. */
export class StaticFiles {
  readonly #dir: string;
  readonly #transform: FileTransform | undefined;
  #root: Promise<string> | undefined;

  constructor(dir: string, transform?: FileTransform) {
    this.#dir = dir;
    this.#transform = transform;
  }

  /** Whether `segments` name a file this folder serves. */
  async has(segments: readonly string[]): Promise<boolean> {
    return (await this.#resolve(segments)) !== undefined;
  }

  /** Answers the file at `segments` under the folder, or 404. Only GET and HEAD reach here. */
  async serve(req: IncomingMessage, res: ServerResponse, segments: readonly string[]): Promise<void> {
    const file = await this.#resolve(segments);
    if (file === undefined) {
      sendCode(res, 'NOT_FOUND');
      return;
    }
    const raw = await readFile(file.path);
    const body = this.#transform ? this.#transform(raw, file.path) : raw;
    const etag = `W/"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
    const headers = {
      ...UI_HEADERS,
      'content-type': CONTENT_TYPES[extname(file.path).toLowerCase()] ?? 'application/octet-stream',
      etag,
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': body.length });
    res.end(body);
  }

  async #resolve(
    segments: readonly string[],
  ): Promise<{ path: string; size: number; mtimeMs: number } | undefined> {
    if (segments.length === 0 || !segments.every(safeSegment)) return undefined;
    const root = await this.#rootDir();
    if (root === undefined) return undefined;
    try {
      // realpath also resolves symlinks, so a link pointing out of the folder is refused too.
      const path = await realpath(join(root, ...segments));
      if (!path.startsWith(root + sep)) return undefined;
      const info = await stat(path);
      return info.isFile() ? { path, size: info.size, mtimeMs: info.mtimeMs } : undefined;
    } catch {
      return undefined;
    }
  }

  async #rootDir(): Promise<string | undefined> {
    this.#root ??= realpath(this.#dir);
    try {
      return await this.#root;
    } catch {
      this.#root = undefined; // the folder may appear later (a dev build)
      return undefined;
    }
  }
}
