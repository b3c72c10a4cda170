/**
 * The admin UI's app list at scale, in Debian's Chromium (playwright-core) against the UI test
 * harness's fake backend (test/admin/ui-harness.ts: the real admin handler, SSE and UI files,
 * apps in memory): the first render after Sign in (the page's own clock: a mark before the click
 * to the list's `appvisor:apps-drawn` mark, which includes GET apps, parsing, sorting and the
 * first rows), the synchronous cost of one filter change and of one search over every app, and a
 * bulk Stop of `bulkApps` running apps through `POST api/bulk/stop` (the UI's batches of 100,
 * 2 in flight; each stop also comes back as an SSE status event the list applies): with every app shown (`all`),
 * and filtered to `running` (`filtered`: each stopped app leaves the list, which redraws).
 * `stopDelayMs` makes the fake backend's stop take that long, standing in for the state store
 * write a real stop does.
 *
 *   node --import tsx bench/ui-list.ts [sizes=1000,10000] [repeats=5] [bulkApps=2000] [stopDelayMs=0,5] [modes=all,filtered]
 */
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { fleet } from '../test/admin/ui-fleet.js';
import { CHROMIUM, launchBrowser, openPage, startUiServer } from '../test/admin/ui-harness.js';
import { listArg, median, numberArg, onInterrupt, progress, report, round } from './lib.js';

// Callbacks given to page.evaluate run in the browser; the project compiles without the DOM lib.
interface BrowserControl {
  value: string;
  dispatchEvent(event: unknown): boolean;
  requestSubmit(): void;
}
declare const document: { getElementById(id: string): BrowserControl };
declare const performance: {
  now(): number;
  mark(name: string): unknown;
  getEntriesByName(name: string): { startTime: number }[];
};
declare const Event: new (type: string) => unknown;

const SIZES = listArg(0, ['1000', '10000']).map(Number);
const REPEATS = numberArg(1, 5);
const BULK_APPS = numberArg(2, 2000);
const STOP_DELAYS = listArg(3, ['0', '5']).map(Number);
const MODES = listArg(4, ['all', 'filtered']);
const TOKEN = 'bench-ui-list-token-0123456789';

if (!existsSync(CHROMIUM)) {
  console.log(`ui-list: skipped, ${CHROMIUM} is missing`);
  console.log(JSON.stringify({ bench: 'ui-list', skipped: `${CHROMIUM} missing` }));
  process.exit(0);
}

const server = await startUiServer(TOKEN);
const browser = await launchBrowser();
const dispose = async () => {
  await browser.close();
  await server.close();
};
const unhook = onInterrupt(dispose);

async function signIn(page: Page): Promise<number> {
  await page.goto(`${server.base}/_supervisor/`);
  await page.getByLabel('Admin token').fill(TOKEN);
  await page.evaluate(() => performance.mark('bench:sign-in'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#apps-body tr[data-app]').first().waitFor({ timeout: 60_000 });
  const ms = await page.evaluate(
    () =>
      performance.getEntriesByName('appvisor:apps-drawn')[0]!.startTime -
      performance.getEntriesByName('bench:sign-in')[0]!.startTime,
  );
  await page.locator('#connection[data-state="live"]').waitFor({ timeout: 60_000 });
  return ms;
}

/** Milliseconds of one synchronous filter pass: the control's change event to the list redrawn. */
async function filterPass(page: Page, id: string, value: string, submit: boolean): Promise<number> {
  return page.evaluate(
    ({ id, value, submit }) => {
      const control = document.getElementById(id);
      const start = performance.now();
      control.value = value;
      if (submit) document.getElementById('apps-tools').requestSubmit();
      else control.dispatchEvent(new Event('change'));
      return performance.now() - start;
    },
    { id, value, submit },
  );
}

const renders: Record<string, unknown>[] = [];
let filterMs = Number.NaN;
let searchMs = Number.NaN;
for (const size of SIZES) {
  server.backend.reset(fleet(size));
  const times: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const { page } = await openPage(browser.context);
    times.push(await signIn(page));
    if (r === REPEATS - 1 && size === Math.max(...SIZES)) {
      const filters: number[] = [];
      const searches: number[] = [];
      for (let i = 0; i < 10; i++) {
        filters.push(await filterPass(page, 'filter-status', i % 2 === 0 ? 'error' : '', false));
        searches.push(await filterPass(page, 'apps-search', i % 2 === 0 ? 'ledger' : '', true));
      }
      filterMs = median(filters);
      searchMs = median(searches);
    }
    await page.close();
  }
  progress(`${size} apps: first render ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
  renders.push({ apps: size, firstRenderMsP50: round(median(times)), maxMs: round(Math.max(...times)) });
}

const bulk: Record<string, unknown>[] = [];
const size = Math.max(...SIZES);
for (const delay of STOP_DELAYS)
  for (const mode of MODES) {
    server.backend.reset(fleet(BULK_APPS));
    const stop = server.backend.stop.bind(server.backend);
    server.backend.stop = async (name: string) => {
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      return stop(name);
    };
    const { page } = await openPage(browser.context);
    await signIn(page);
    if (mode === 'filtered') await page.getByLabel('Status', { exact: true }).selectOption('running');
    await page.getByRole('button', { name: 'Stop all shown…' }).click();
    const dialog = page.locator('dialog.bulk[open]');
    const confirm = dialog.getByRole('button', { name: /^Stop [\d,]+ apps$/ });
    const apps = Number((await confirm.innerText()).replace(/\D/g, ''));
    const start = performance.now();
    await confirm.click();
    await dialog.locator('.bulk-result').waitFor({ timeout: 600_000 });
    const ms = performance.now() - start;
    const result = await dialog.locator('.bulk-result').innerText();
    const stops = server.backend.calls.filter((c) => c.startsWith('stop ')).length;
    await page.close();
    server.backend.stop = stop;
    progress(`bulk stop of ${apps} apps (${mode}), stop ${delay} ms: ${ms.toFixed(0)} ms (${result})`);
    bulk.push({
      apps,
      shown: mode,
      stopDelayMs: delay,
      stopsSeen: stops,
      totalMs: round(ms),
      perSecond: round((apps / ms) * 1000),
    });
  }

unhook();
await dispose();

console.log('\nFirst render after Sign in (ms, the page clock)');
console.table(renders);
console.log(`one filter change over ${size} apps: ${round(filterMs)} ms; one search: ${round(searchMs)} ms`);
report('Bulk Stop of the running apps shown (bulk/stop, batches of 100, 2 in flight)', bulk, {
  bench: 'ui-list',
  renders,
  filterPassMs: round(filterMs),
  searchPassMs: round(searchMs),
  bulk,
});
