import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type FileTransform, StaticFiles } from './static.js';

/**
 * The browser libraries the admin UI loads, by the name it uses under `/_supervisor/vendor/`:
 * each one's folder of built files inside its npm package. They are served from the installed
 * package itself, so the page loads nothing from a CDN and no copy in the tree goes stale.
 */
const VENDORED: Readonly<
  Record<string, { readonly pkg: string; readonly dir: string; readonly transform?: FileTransform }>
> = {
  uplot: { pkg: 'uplot', dir: 'dist' },
  'virtual-core': { pkg: '@tanstack/virtual-core', dir: 'dist/esm', transform: asProduction },
};

/**
 * A module built for bundlers reads `process.env.NODE_ENV`, which a bundler replaces and a
 * browser does not have (the import would throw "process is not defined"): served as a
 * production build would have it.
 */
function asProduction(body: Buffer, path: string): Buffer {
  if (!path.endsWith('.js')) return body;
  return Buffer.from(body.toString('utf8').replaceAll('process.env.NODE_ENV', '"production"'));
}

/** Serves `vendor/<library>/<file>`: only files of the libraries listed above. */
export class VendorFiles {
  readonly #libraries = new Map<string, StaticFiles>();

  constructor() {
    const require = createRequire(import.meta.url);
    for (const [name, { pkg, dir, transform }] of Object.entries(VENDORED)) {
      const root = dirname(require.resolve(`${pkg}/package.json`));
      this.#libraries.set(name, new StaticFiles(join(root, dir), transform));
    }
  }

  /** The library's files for `segments` (after `vendor`), when it is one of ours. */
  #files(segments: readonly string[]): { files: StaticFiles; rest: readonly string[] } | undefined {
    const [library, ...rest] = segments;
    const files = library === undefined ? undefined : this.#libraries.get(library);
    return files ? { files, rest } : undefined;
  }

  async has(segments: readonly string[]): Promise<boolean> {
    const found = this.#files(segments);
    return found !== undefined && (await found.files.has(found.rest));
  }

  serve(
    req: Parameters<StaticFiles['serve']>[0],
    res: Parameters<StaticFiles['serve']>[1],
    segments: readonly string[],
  ) {
    const found = this.#files(segments)!;
    return found.files.serve(req, res, found.rest);
  }
}
