/**
 * Hot reload: from writing a manifest to the change being live over HTTP, with an in-process
 * supervisor watching apps.d (SQLite, a folder of M apps). Four edits in a cycle:
 * - disable an app   → live when its visit answers 503 APP_DISABLED;
 * - enable it again  → live when its visit answers 200 (this includes the app's lazy start);
 * - add a domain     → live when a request with that Host reaches the app;
 * - remove it        → live when that Host reaches the main app again.
 * Each change is polled with a tight HTTP loop (1 ms between requests, 10 s deadline). The
 * same cycle runs twice: through the file watcher (what a user gets), then with `reload()`
 * called right after the write (the reconcile path alone, without the watcher's
 * write-finish wait and debounce). A domain edit must not restart the app: checked too.
 *
 *   node --import tsx bench/hot-reload.ts [edits=32] [apps=50]
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { applyPlan } from '../src/reconcile/commands.js';
import { startSupervisor } from '../src/serve/supervisor.js';
import {
  createWorkspace,
  errorCode,
  type HttpResult,
  httpGet,
  numberArg,
  progress,
  report,
  type Summary,
  silentLog,
  summarize,
} from './lib.js';

const EDITS = Math.max(4, numberArg(0, 32));
const APPS = Math.max(2, numberArg(1, 50));
const DEADLINE_MS = 10_000;
const POLL_MS = 1;
const KINDS = ['disable', 'enable', 'add domain', 'remove domain'] as const;
type Kind = (typeof KINDS)[number];
type Mode = 'watcher' | 'reload()';

const ws = await createWorkspace('sqlite');
try {
  const names = Array.from({ length: APPS }, (_, i) => ws.appName(i));
  const toggled = names[0]!;
  const routed = names[1]!;
  const domain = `${routed.replace(/_/g, '-')}.bench.test`;
  await ws.writeManifests(names);
  progress(`provisioning ${APPS} SQLite apps`);
  const applied = await applyPlan(ws.settings, { log: silentLog });
  if (applied.failures.length > 0) throw new Error(`apply failed: ${JSON.stringify(applied.failures[0])}`);

  const sup = await startSupervisor({ settings: ws.settings, log: silentLog, env: {} });
  try {
    await sup.ready;
    const appUrl = `${sup.url}/apps/${toggled}/api/info`;
    const hostUrl = `${sup.url}/api/info`;
    const nameOf = (r: HttpResult): string | undefined =>
      r.status === 200 ? (JSON.parse(r.body) as { name?: string }).name : undefined;
    for (const n of [toggled, routed]) {
      if ((await httpGet(`${sup.url}/apps/${n}/api/info`)).status !== 200)
        throw new Error(`${n} does not start`);
    }

    const edits: Record<Kind, { manifest: string; probe: () => Promise<boolean> }> = {
      disable: {
        manifest: ws.manifest(toggled, 'enabled: false\n'),
        probe: async () => {
          const r = await httpGet(appUrl);
          return r.status === 503 && errorCode(r.body) === 'APP_DISABLED';
        },
      },
      enable: {
        manifest: ws.manifest(toggled),
        probe: async () => nameOf(await httpGet(appUrl)) === toggled,
      },
      'add domain': {
        manifest: ws.manifest(routed, `domains: [${domain}]\n`),
        probe: async () => nameOf(await httpGet(hostUrl, { host: domain })) === routed,
      },
      'remove domain': {
        manifest: ws.manifest(routed),
        probe: async () => nameOf(await httpGet(hostUrl, { host: domain })) === 'main',
      },
    };
    const fileOf = (kind: Kind): string =>
      path.join(ws.appsDir, `${kind.includes('domain') ? routed : toggled}.yaml`);

    const times = new Map<string, number[]>();
    let timeouts = 0;
    let domainRestarts = 0;
    for (const mode of ['watcher', 'reload()'] as Mode[]) {
      progress(`${EDITS} edits through ${mode}`);
      for (let i = 0; i < EDITS; i++) {
        const kind = KINDS[i % KINDS.length]!;
        const startedAt = sup.runtime.startedAt(routed)?.getTime();
        const t0 = performance.now();
        await fs.writeFile(fileOf(kind), edits[kind].manifest);
        if (mode === 'reload()') await sup.reload();
        let live = false;
        while (performance.now() - t0 < DEADLINE_MS) {
          if (await edits[kind].probe()) {
            live = true;
            break;
          }
          await sleep(POLL_MS);
        }
        const ms = performance.now() - t0;
        if (!live) {
          // Counted and reported, not timed: the next edit writes the file afresh.
          timeouts++;
          progress(`${mode} ${kind}: not live after ${DEADLINE_MS} ms`);
          continue;
        }
        const key = `${mode}|${kind}`;
        times.set(key, [...(times.get(key) ?? []), ms]);
        if (kind.includes('domain') && sup.runtime.startedAt(routed)?.getTime() !== startedAt)
          domainRestarts++;
        // Let the watcher's own reload of this write (reload() mode) pass before the next edit.
        await sleep(250);
      }
    }

    const results: { mode: Mode; kind: Kind; ms: Summary }[] = [];
    for (const [key, list] of times) {
      const [mode, kind] = key.split('|') as [Mode, Kind];
      results.push({ mode, kind, ms: summarize(list) });
    }
    const all = (mode: Mode): Summary =>
      summarize([...times].filter(([k]) => k.startsWith(`${mode}|`)).flatMap(([, v]) => v));
    report(
      `hot reload: manifest write → change live over HTTP, ${APPS} apps in apps.d, ${EDITS} edits per mode ` +
        `(domain edits that restarted the app: ${domainRestarts}) — node ${process.version}`,
      [
        ...results.map((r) => ({
          mode: r.mode,
          edit: r.kind,
          n: r.ms.n,
          'p50 ms': r.ms.p50,
          'p95 ms': r.ms.p95,
          'max ms': r.ms.max,
        })),
        ...(['watcher', 'reload()'] as Mode[]).map((mode) => {
          const s = all(mode);
          return { mode, edit: 'all', n: s.n, 'p50 ms': s.p50, 'p95 ms': s.p95, 'max ms': s.max };
        }),
      ],
      {
        bench: 'hot-reload',
        node: process.version,
        apps: APPS,
        edits: EDITS,
        pollMs: POLL_MS,
        timeouts,
        domainRestarts,
        watcher: all('watcher'),
        reload: all('reload()'),
        results,
      },
    );
  } finally {
    await sup.close({ graceMs: 5_000 });
  }
} finally {
  await ws.dispose();
}
