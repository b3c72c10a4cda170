/**
 * A worker thread that runs one of appvisor's own modules. Built (dist/), the module is plain
 * JavaScript and runs as it is. Run from the sources (tests and benches under tsx) it is
 * TypeScript, and on Node 20 a worker does not inherit the parent's tsx loader, not even with
 * `--import tsx` in its execArgv: the thread registers tsx itself, then imports the module.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `./<name>.js` next to `importer` when built, `./<name>.ts` when `importer` is a source file. */
export function siblingModule(importer: string, name: string): URL {
  return new URL(`./${name}${importer.endsWith('.ts') ? '.ts' : '.js'}`, importer);
}

export function startModuleThread(module: URL, options: WorkerOptions): Worker {
  if (!module.pathname.endsWith('.ts')) return new Worker(module, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(module.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
