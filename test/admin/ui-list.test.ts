/**
 * The admin UI's app list at 10,000 apps, in Chromium against the fake backend: the first render
 * (timed by the page's own clock and printed, not asserted), a virtualized table that still says
 * how many rows it has, search, every filter, the sort, the URL hash, a live status event that
 * changes its own row only, bulk Stop (Cancel sends nothing; confirm stops exactly the apps
 * shown, refusals listed with the API's message) and the Attention view.
 */
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import { replicaView } from './fakes.js';
import { fleet, plainName, UNIQUE } from './ui-fleet.js';
import {
  type Browser,
  browserAvailable,
  launchBrowser,
  openPage,
  type PageRecord,
  signIn,
  startUiServer,
  type UiServer,
} from './ui-harness.js';

// Callbacks given to page.evaluate run in the browser; the project compiles without the DOM lib.
interface BrowserElement {
  readonly dataset: Record<string, string | undefined>;
  readonly parentElement: BrowserElement | null;
  closest(selector: string): BrowserElement | null;
  scrollTop: number;
  readonly scrollHeight: number;
}
declare const window: Record<string, unknown>;
declare const document: {
  querySelector(selector: string): BrowserElement | null;
  querySelectorAll(selector: string): ArrayLike<BrowserElement>;
};
declare const performance: {
  now(): number;
  mark(name: string): { startTime: number };
  getEntriesByName(name: string): { startTime: number; detail?: unknown }[];
};
declare function requestAnimationFrame(cb: () => void): number;
declare class MutationObserver {
  constructor(cb: (records: { target: BrowserElement }[]) => void);
  observe(target: BrowserElement, options: Record<string, boolean>): void;
  disconnect(): void;
}

const TOKEN = 'ui-list-admin-token-0123456789';
const SIZE = 10_000;
const APPS = fleet(SIZE);

/** The apps whose rows are in the DOM now, in order. */
const drawn = (page: Page): Promise<string[]> =>
  page.$$eval('#apps-body tr[data-app]', (rows) =>
    rows.map((r) => (r as unknown as BrowserElement).dataset.app!),
  );

/** Waits until the rows drawn are exactly `names` (the list re-filters on the next frame). */
async function expectRows(page: Page, names: string[]): Promise<void> {
  await expect.poll(() => drawn(page), { timeout: 5_000 }).toEqual(names);
}

/** Two animation frames: whatever the list folds into its next frame has happened. */
const frames = (page: Page): Promise<unknown> =>
  page.evaluate(
    () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(1)))),
  );

describe.skipIf(!browserAvailable())('the app list with 10,000 apps in Chromium (fake backend)', () => {
  let browser: Browser;
  let server: UiServer;
  let current: PageRecord | undefined;

  beforeAll(async () => {
    server = await startUiServer(TOKEN);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  beforeEach(async () => {
    server.backend.reset(APPS);
    current = await openPage(browser.context);
  });
  afterEach(async () => {
    const record = current!;
    current = undefined;
    await record.page.close();
    expect(
      record.errors.filter((e) => !/503 \(Service Unavailable\)/.test(e)),
      'console errors',
    ).toEqual([]);
  });

  it('draws the first rows of 10,000 apps (time printed), only the rows in view, and scrolls to the last', async () => {
    const { page } = current!;
    await page.goto(`${server.base}/_supervisor/`);
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.evaluate(() => performance.mark('test:sign-in'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#apps-body tr[data-app]').first().waitFor();
    const timing = await page.evaluate(() => {
      const signIn = performance.getEntriesByName('test:sign-in')[0]!.startTime;
      const drawnAt = performance.getEntriesByName('appvisor:apps-drawn')[0]!;
      return {
        firstRenderMs: drawnAt.startTime - signIn,
        detail: drawnAt.detail,
        now: performance.now() - signIn,
      };
    });
    // A figure to read, not a pass mark (a shared machine's timing is not a test).
    console.log(
      `first render of ${SIZE} apps: ${timing.firstRenderMs.toFixed(0)} ms from the Sign in click (GET apps, parse, sort, draw); rows drawn: ${JSON.stringify(timing.detail)}`,
    );
    await page.locator('#connection[data-state="live"]').waitFor();

    const rows = await drawn(page);
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.length).toBeLessThan(60);
    // Sorted by name; the table tells assistive technology its real size and each row's place.
    expect(rows.slice(0, 3)).toEqual([UNIQUE.startMode, plainName(0), plainName(1)]);
    expect(await page.getAttribute('#apps', 'aria-rowcount')).toBe(String(SIZE + 1));
    expect(await page.getAttribute(`tr[data-app="${plainName(0)}"]`, 'aria-rowindex')).toBe('3');
    const summary = await page.locator('#apps-summary').innerText();
    expect(summary).toMatch(/^10,000 apps: /);
    expect(
      summary
        .replace(/^[^:]*: /, '')
        .split(', ')
        .sort(),
    ).toEqual(['9,996 running', '1 upgrading', '1 error', '1 needs-upgrade', '1 orphaned'].sort());

    // The end of the list is one scroll away, and drawn when reached.
    await page.evaluate(() => {
      const scroller = document.querySelector('#apps-scroll')!;
      scroller.scrollTop = scroller.scrollHeight;
    });
    await expect.poll(() => drawn(page).then((names) => names.at(-1))).toBe('storefront');
    expect(await page.getAttribute('tr[data-app="storefront"]', 'aria-rowindex')).toBe(String(SIZE + 1));
    expect((await drawn(page)).length).toBeLessThan(60);
  });

  it.each([
    ['a name', UNIQUE.name, UNIQUE.name],
    ['a display name (two words)', 'quarterly LEDGER', UNIQUE.displayName],
    ['a domain', 'unique.example', UNIQUE.domain],
  ])('search finds the one app by %s', async (_what, words, expected) => {
    const { page } = current!;
    await signIn(page, server.base, TOKEN);
    await page.getByLabel('Search').fill(words);
    await expectRows(page, [expected]);
    expect(await page.locator('#apps-summary').innerText()).toMatch(/^1 of 10,000 apps: /);
    expect(await page.locator('#apps-matches').textContent()).toBe('1 of 10,000 apps');
  });

  it.each([
    ['Status', 'upgrading', UNIQUE.status, 'status=upgrading'],
    ['Start mode', 'with-main', UNIQUE.startMode, 'mode=with-main'],
    ['Dialect', 'mysql', UNIQUE.dialect, 'dialect=mysql'],
    ['Application', 'crm-suite', UNIQUE.application, 'app=crm-suite'],
    ['Error', 'any', UNIQUE.error, 'error=any'],
    ['Error', 'APP_CRASHED', UNIQUE.error, 'error=APP_CRASHED'],
  ])('the %s filter (%s) finds the one app, and the link keeps it', async (label, value, expected, hash) => {
    const { page } = current!;
    await signIn(page, server.base, TOKEN);
    await page.getByLabel(label, { exact: true }).selectOption(value);
    await expectRows(page, [expected]);
    expect(await page.locator('#apps-summary').innerText()).toMatch(/^1 of 10,000 apps: /);
    expect(new URL(page.url()).hash).toBe(`#${hash}`);

    // A reload (or the link, shared) shows the same: the filter comes from the hash.
    await page.reload();
    await page.locator('#connection[data-state="live"]').waitFor();
    await expectRows(page, [expected]);
    expect(await page.getByLabel(label, { exact: true }).inputValue()).toBe(value);

    // Clear filters: every app again, and no hash.
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => page.locator('#apps-summary').innerText()).toMatch(/^10,000 apps: /);
    expect(new URL(page.url()).hash).toBe('');
  });

  it('combines the search with filters, says when nothing matches, and sorts', async () => {
    const { page } = current!;
    await signIn(page, server.base, TOKEN);
    await page.getByLabel('Search').fill('needle');
    await page.getByLabel('Status', { exact: true }).selectOption('error');
    await page.locator('#apps-no-match').waitFor();
    expect(await drawn(page)).toEqual([]);
    expect(await page.locator('#apps-summary').innerText()).toBe('0 of 10,000 apps');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.locator('#apps-no-match').waitFor({ state: 'hidden' });

    // Status sort: the problems first (error and needs-upgrade), then what is busy.
    await page.getByLabel('Sort by').selectOption('status');
    await expect
      .poll(() => drawn(page).then((n) => n.slice(0, 3)))
      .toEqual([UNIQUE.error, UNIQUE.needsUpgrade, UNIQUE.status]);
    // Error sort: the one app with an error first.
    await page.getByLabel('Sort by').selectOption('error');
    await expect.poll(() => drawn(page).then((n) => n[0])).toBe(UNIQUE.error);
    // Name, reversed: the last name first.
    await page.getByLabel('Sort by').selectOption('name');
    await page.getByRole('button', { name: 'Reverse order' }).click();
    await expect.poll(() => drawn(page).then((n) => n[0])).toBe('storefront');
    expect(await page.getByRole('button', { name: 'Reverse order' }).getAttribute('aria-pressed')).toBe(
      'true',
    );
    expect(new URL(page.url()).hash).toBe('#desc=1');
  });

  it('a status event changes its own row only; an app leaving the filter leaves the window', async () => {
    const { page } = current!;
    await signIn(page, server.base, TOKEN);
    const target = plainName(3);
    await page.locator(`tr[data-app="${target}"]`).waitFor();
    await frames(page);
    // Every node under the rows drawn, and every change the page makes to any of them.
    await page.evaluate(() => {
      const body = document.querySelector('#apps-body')!;
      const touched = new Set<string>();
      window.touched = touched;
      window.rowsBefore = Array.from(document.querySelectorAll('#apps-body tr[data-app]'));
      const observer = new MutationObserver((records) => {
        for (const record of records) {
          const row = record.target.closest('tr[data-app]');
          touched.add(row ? row.dataset.app! : '(the body itself)');
        }
      });
      observer.observe(body, { subtree: true, childList: true, attributes: true, characterData: true });
      window.observer = observer;
    });
    server.backend.setStatus(target, 'stopping');
    await page.locator(`tr[data-app="${target}"] .badge`, { hasText: /^stopping$/ }).waitFor();
    await frames(page);
    const seen = await page.evaluate(() => {
      const before = window.rowsBefore as BrowserElement[];
      const now = Array.from(document.querySelectorAll('#apps-body tr[data-app]'));
      return {
        touched: [...(window.touched as Set<string>)],
        sameNodes: before.length === now.length && before.every((row, i) => row === now[i]),
      };
    });
    expect(seen).toEqual({ touched: [target], sameNodes: true });
    expect(await page.locator('#apps-summary').innerText()).toMatch(/9,995 running, 1 stopping/);

    // Filtered to running apps: the app that stops leaves the list, the count and the window follow,
    // and the rows that stay are the same nodes.
    await page.getByLabel('Status', { exact: true }).selectOption('running');
    await expect
      .poll(() => page.locator('#apps-summary').innerText())
      .toBe('9,995 of 10,000 apps: 9,995 running');
    const leaving = plainName(5);
    const kept = await page.evaluate((name) => {
      const rows = Array.from(document.querySelectorAll('#apps-body tr[data-app]')).filter(
        (r) => r.dataset.app !== name,
      );
      window.kept = rows;
      return rows.map((r) => r.dataset.app!);
    }, leaving);
    server.backend.setStatus(leaving, 'stopping');
    await expect
      .poll(() => page.locator('#apps-summary').innerText())
      .toBe('9,994 of 10,000 apps: 9,994 running');
    const rows = await drawn(page);
    expect(rows).not.toContain(leaving);
    expect(
      await page.evaluate(() => {
        const kept = window.kept as BrowserElement[];
        const now = new Set(Array.from(document.querySelectorAll('#apps-body tr[data-app]')));
        return kept.filter((row) => now.has(row)).map((row) => row.dataset.app!);
      }),
    ).toEqual(kept.filter((name) => rows.includes(name)));
  });

  it('a row scrolled out of the DOM and back keeps its expanded error and the keyboard focus', async () => {
    const { page } = current!;
    const erring = plainName(1);
    const focused = plainName(2);
    server.backend.setStatus(erring, 'error', {
      code: 'APP_CRASHED',
      message: `the app crashed: ${'a long stack trace, '.repeat(8)}`,
    });
    await signIn(page, server.base, TOKEN);
    await page.locator(`tr[data-app="${focused}"]`).waitFor();
    await page.locator(`tr[data-app="${erring}"] summary`).click();
    await page.locator(`tr[data-app="${focused}"] .action-stop`).focus();
    const scrollTo = (where: 'top' | 'bottom') =>
      page.evaluate((to) => {
        const scroller = document.querySelector('#apps-scroll')!;
        scroller.scrollTop = to === 'top' ? 0 : scroller.scrollHeight;
      }, where);
    const focus = () =>
      page.evaluate(() => {
        const el = (
          document as unknown as { activeElement: BrowserElement & { id: string; className: string } }
        ).activeElement;
        return { id: el.id, className: el.className, app: el.closest('tr[data-app]')?.dataset.app ?? null };
      });

    // Scrolled away, the two rows leave the DOM; the focus waits on the scroll container, not
    // on the page's body.
    await scrollTo('bottom');
    await expect.poll(() => drawn(page)).not.toContain(focused);
    expect(await focus()).toMatchObject({ id: 'apps-scroll', app: null });
    // Scrolled back: the same control has the focus again and the error is still expanded.
    await scrollTo('top');
    await expect
      .poll(() => focus())
      .toMatchObject({ className: expect.stringMatching(/action-stop/), app: focused });
    expect(await page.locator(`tr[data-app="${erring}"] details`).getAttribute('open')).toBe('');

    // Scrolled away again, Tab goes on with the rows in view, and once the focus has moved on,
    // the row coming back does not take it.
    await scrollTo('bottom');
    await expect.poll(() => drawn(page)).not.toContain(focused);
    await page.keyboard.press('Tab');
    const moved = await focus();
    expect(moved.app).not.toBeNull();
    expect(await drawn(page)).toContain(moved.app);
    await page.locator(`tr[data-app="${moved.app}"] .app-name`).focus();
    await scrollTo('top');
    await page.locator(`tr[data-app="${focused}"]`).waitFor();
    await frames(page);
    expect((await focus()).app).not.toBe(focused);
  });

  it('bulk Stop of the apps shown: Cancel sends nothing; confirm stops exactly those, refusals listed', async () => {
    const { page } = current!;
    server.backend.refuse.set(plainName(7), new AppvisorError('APP_DISABLED', { app: plainName(7) }));
    await signIn(page, server.base, TOKEN);
    // app-0000x: the first ten plain apps (app-00000 … app-00009), one of them refused.
    await page.getByLabel('Search').fill('app-0000');
    await expect.poll(() => page.locator('#apps-summary').innerText()).toMatch(/^10 of 10,000 apps/);
    const shown = Array.from({ length: 10 }, (_, i) => plainName(i));

    await page.getByRole('button', { name: 'Stop all shown…' }).click();
    const dialog = page.locator('dialog.bulk[open]');
    await dialog.waitFor();
    expect(await dialog.locator('h2').innerText()).toBe('Stop 10 apps?');
    expect(await dialog.locator('.bulk-names').innerText()).toBe(
      'app-00000, app-00001, app-00002, app-00003, app-00004 and 5 more.',
    );
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(server.backend.calls).toEqual([]);

    await page.getByRole('button', { name: 'Stop all shown…' }).click();
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Stop 10 apps' }).click();
    await dialog.locator('.bulk-result', { hasText: 'Stop sent to 9 of 10 apps; 1 refused.' }).waitFor();
    expect(await dialog.locator('.bulk-failures li').allInnerTexts()).toEqual([
      `${plainName(7)}: app ${plainName(7)} is disabled`,
    ]);
    expect(await dialog.locator('#bulk-state').innerText()).toBe('10 of 10 sent, 1 failed');
    expect([...server.backend.calls].sort()).toEqual(shown.map((name) => `stop ${name}`));
    // The list shows the answers: each app it stopped is stopping.
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect
      .poll(() => page.locator('#apps-summary').innerText())
      .toBe('10 of 10,000 apps: 9 stopping, 1 running');
  });

  it('the Attention view lists the apps in error, needing an upgrade, with a drop due, or drifted, and why', async () => {
    const { page } = current!;
    server.backend.replicas = [
      replicaView('host-a-1-aaaa', { self: true, leader: true, drift: [UNIQUE.drift] }),
    ];
    await signIn(page, server.base, TOKEN);
    const button = page.getByRole('button', { name: /^Needs attention/ });
    await expect.poll(() => button.innerText()).toBe('Needs attention (4)');
    await button.click();
    await expectRows(page, [UNIQUE.error, UNIQUE.drift, UNIQUE.drop, UNIQUE.needsUpgrade]);
    expect(new URL(page.url()).hash).toBe('#view=attention');
    expect(await button.getAttribute('aria-pressed')).toBe('true');
    const why = (name: string) =>
      page.locator(`tr[data-app="${name}"] .attention-reasons li`).allInnerTexts();
    expect(await why(UNIQUE.error)).toEqual(['In error: APP_CRASHED: the app crashed 3 times in a row']);
    expect(await why(UNIQUE.drift)).toEqual([
      'Drift: the manifest in apps.d differs from what is applied on this replica',
    ]);
    expect(await why(UNIQUE.drop)).toEqual([
      'Its data is dropped at 2026-12-24T08:00:00.000Z unless the manifest comes back',
    ]);
    expect(await why(UNIQUE.needsUpgrade)).toEqual([
      'Needs an upgrade: its data is older than its code and it is not started until upgraded',
    ]);

    // An app that gets an error joins the view live.
    server.backend.setStatus(plainName(2), 'error', {
      code: 'APP_UNRESPONSIVE',
      message: 'no answer in 5 s',
    });
    await expectRows(page, [plainName(2), UNIQUE.error, UNIQUE.drift, UNIQUE.drop, UNIQUE.needsUpgrade]);
    await expect.poll(() => button.innerText()).toBe('Needs attention (5)');
    await page.getByRole('button', { name: 'All apps' }).click();
    await expect.poll(() => page.locator(`tr[data-app="${plainName(0)}"]`).count()).toBe(1);
    expect(await page.locator('.attention-reasons li').count()).toBe(0);
  });

  it("charts each drawn app's requests/s in the list, asking the figures of the apps in view only", async () => {
    const { page } = current!;
    const asked: string[][] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname.endsWith('/api/figures')) asked.push(url.searchParams.get('apps')!.split(','));
    });
    const figures = server.backend.figures;
    const busy = plainName(0);
    for (let i = 0; i < 120; i++) figures.answered(figures.opened(busy)!, 200, 5);
    await signIn(page, server.base, TOKEN);
    const cell = page.locator(`tr[data-app="${busy}"] .col-traffic`);
    await cell.locator('.sparkline canvas').waitFor();
    // 120 requests in the minute under way: a rate above nothing, as text and on the chart.
    expect(Number(await cell.locator('.traffic-now').innerText())).toBeGreaterThan(0);
    expect(Number(await cell.locator('.sparkline').getAttribute('data-latest'))).toBeGreaterThan(0);
    expect(await cell.locator('.sparkline').getAttribute('aria-label')).toMatch(
      new RegExp(`^${busy} requests per second over the last hour: latest [0-9.]+$`),
    );
    // An app without traffic shows a flat chart at 0.
    const quiet = page.locator(`tr[data-app="${plainName(1)}"] .col-traffic`);
    expect(await quiet.locator('.traffic-now').innerText()).toBe('0');
    // Only the rows in view were asked for, not 10,000 apps.
    const names = asked.flat();
    expect(names).toContain(busy);
    expect(names.length).toBeLessThan(60);
    expect(names.length).toBe(new Set(names).size);

    // Scrolled to the end, the apps now in view are asked for.
    await page.evaluate(() => {
      const scroller = document.querySelector('#apps-scroll')!;
      scroller.scrollTop = scroller.scrollHeight;
    });
    await expect.poll(() => asked.flat().includes('storefront'), { timeout: 5_000 }).toBe(true);
    await page.locator('tr[data-app="storefront"] .col-traffic .sparkline').waitFor();
    expect(asked.flat().length).toBeLessThan(150);
  });

  it('reads and writes the hash the same way (in the page)', async () => {
    const { page } = current!;
    await page.goto(`${server.base}/_supervisor/`);
    // A string, so that vitest does not rewrite the import() meant for the browser.
    const result = await page.evaluate(`(async () => {
      const { parseHash, toHash, DEFAULT_STATE } = await import('/_supervisor/filters.js');
      const state = { ...DEFAULT_STATE, q: 'shop eu', status: 'error', application: 'crm suite', sort: 'reconciled', desc: true, view: 'attention' };
      return {
        hash: toHash(state),
        back: parseHash(toHash(state)),
        empty: toHash(DEFAULT_STATE),
        wrong: parseHash('#sort=sideways&view=nope&desc=yes'),
        state,
      };
    })()`);
    const { hash, back, empty, wrong, state } = result as Record<string, unknown>;
    expect(hash).toBe('#q=shop+eu&status=error&app=crm+suite&sort=reconciled&desc=1&view=attention');
    expect(back).toEqual(state);
    expect(empty).toBe('');
    expect(wrong).toMatchObject({ sort: 'name', view: 'all', desc: false });
  });
});
