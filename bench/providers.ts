/**
 * Provider throughput: creates N databases/schemas one after another (as the serialized
 * reconciler does), then drops them, for SQLite files, PostgreSQL schemas, PostgreSQL databases
 * and MySQL/MariaDB databases. Prints ms per create and per drop as a table and one JSON line.
 *
 *   node --import tsx bench/providers.ts [count]
 *
 * Servers: APPVISOR_TEST_PG_URL / APPVISOR_TEST_MYSQL_URL (defaults: the local servers).
 * An unreachable server is skipped. Everything created is dropped, also on failure.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createProvider } from '../src/providers/index.js';
import type { OperationResult, Provider } from '../src/providers/provider.js';

const COUNT = Number(process.argv[2] ?? 200);
const PG_URL = process.env.APPVISOR_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MYSQL_URL = process.env.APPVISOR_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';
const OWNER = 'appvisor:bench:app';

interface Kind {
  readonly label: string;
  readonly make: () => Provider;
  readonly create: (p: Provider, name: string) => Promise<OperationResult>;
  readonly drop: (p: Provider, name: string) => Promise<OperationResult>;
  readonly dispose?: () => void;
}

interface Figures {
  readonly kind: string;
  readonly count: number;
  readonly createMsMean: number;
  readonly createMsP95: number;
  readonly dropMsMean: number;
  readonly dropMsP95: number;
  readonly totalMs: number;
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appvisor-bench-'));

const KINDS: readonly Kind[] = [
  {
    label: 'sqlite files',
    make: () => createProvider('sqlite:main.sqlite', { dataDir }),
    create: (p, n) => p.createDatabase(n, OWNER),
    drop: (p, n) => p.dropDatabase(n),
    dispose: () => fs.rmSync(dataDir, { recursive: true, force: true }),
  },
  {
    label: 'postgres schemas',
    make: () => createProvider(PG_URL, { dataDir }),
    create: (p, n) => p.createSchema(n, OWNER),
    drop: (p, n) => p.dropSchema(n),
  },
  {
    label: 'postgres databases',
    make: () => createProvider(PG_URL, { dataDir }),
    create: (p, n) => p.createDatabase(n, OWNER),
    drop: (p, n) => p.dropDatabase(n),
  },
  {
    label: 'mariadb databases',
    make: () => createProvider(MYSQL_URL, { dataDir }),
    create: (p, n) => p.createDatabase(n, OWNER),
    drop: (p, n) => p.dropDatabase(n),
  },
];

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
}

function p95(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? 0;
}

const round = (x: number): number => Math.round(x * 100) / 100;

async function run(kind: Kind): Promise<Figures | undefined> {
  const provider = kind.make();
  const prefix = `avb_${crypto.randomBytes(3).toString('hex')}`;
  const names = Array.from({ length: COUNT }, (_, i) => `${prefix}_${i}`);
  const created: string[] = [];
  try {
    try {
      await provider.observeDatabase(`${prefix}_probe`);
    } catch (err) {
      console.warn(`skipping ${kind.label}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
    const start = performance.now();
    const creates: number[] = [];
    for (const name of names) {
      creates.push(
        await time(async () => {
          if ((await kind.create(provider, name)) !== 'created') throw new Error(`${name} was not created`);
        }),
      );
      created.push(name);
    }
    const drops: number[] = [];
    while (created.length > 0) {
      const name = created.pop()!;
      drops.push(await time(() => kind.drop(provider, name)));
    }
    return {
      kind: kind.label,
      count: COUNT,
      createMsMean: round(mean(creates)),
      createMsP95: round(p95(creates)),
      dropMsMean: round(mean(drops)),
      dropMsP95: round(p95(drops)),
      totalMs: Math.round(performance.now() - start),
    };
  } finally {
    for (const name of created) await kind.drop(provider, name).catch(() => undefined);
    await provider.close();
    kind.dispose?.();
  }
}

const results: Figures[] = [];
for (const kind of KINDS) {
  const figures = await run(kind);
  if (figures) results.push(figures);
}

console.log(`\nProvider bench: ${COUNT} creates then ${COUNT} drops each, sequential\n`);
console.table(
  results.map((r) => ({
    kind: r.kind,
    'create ms (mean)': r.createMsMean,
    'create ms (p95)': r.createMsP95,
    'drop ms (mean)': r.dropMsMean,
    'drop ms (p95)': r.dropMsP95,
    'total ms': r.totalMs,
  })),
);
console.log(JSON.stringify({ bench: 'providers', count: COUNT, node: process.version, results }));
