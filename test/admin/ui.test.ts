/**
 * The admin UI in a real browser (Debian's Chromium through playwright-core): sign-in, the app
 * list, live status over SSE, Start/Stop/Visit, the detail and plan views, a phone-sized
 * screen, the keyboard, and the token staying out of every URL.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppvisorError } from '../../src/errors.js';
import type { HistoryEntry } from '../../src/state/types.js';
import { manifest, type Serve, startServe, waitFor } from '../serve/harness.js';
import { replicaView } from './fakes.js';
import {
  appView,
  type Browser,
  browserAvailable,
  isLocal,
  launchBrowser,
  openPage,
  type PageRecord,
  recordRequests,
  startUiServer,
  type UiServer,
} from './ui-harness.js';

// Callbacks given to page.evaluate run in the browser. The project compiles without the DOM lib,
// so the few browser globals they use are declared here, for this module only.
interface BrowserElement {
  readonly id: string;
  readonly tagName: string;
  readonly textContent: string | null;
  readonly classList: { contains(name: string): boolean };
  readonly parentElement: BrowserElement | null;
  readonly scrollWidth: number;
  readonly clientWidth: number;
  blur(): void;
}
declare const window: Record<string, unknown>;
declare const sessionStorage: { readonly length: number; getItem(key: string): string | null };
declare const document: {
  readonly activeElement: BrowserElement | null;
  readonly documentElement: BrowserElement;
  querySelector(selector: string): BrowserElement | null;
};
declare function getComputedStyle(
  el: BrowserElement,
  pseudo?: string,
): { outlineStyle: string; display: string; content: string; color: string; backgroundColor: string };

const TOKEN = 'ui-admin-token-0123456789abcdef';
const ARTIFACTS = join(process.cwd(), 'test-artifacts');
const LONG_ERROR =
  'the app threw while starting: cannot connect to the payment provider at https://pay.example/api after 3 attempts';

const APPS = [
  appView('blog', {
    displayName: 'Company blog',
    status: 'running',
    startMode: 'with-main',
    database: { mode: 'new-schema', dialect: 'postgres', name: 'main', schema: 'blog' },
    domains: ['blog.example'],
    jwt: { secret: 'shared' },
    application: { key: 'cms', name: 'cms-app', version: 3 },
    startedAt: '2024-05-01T10:00:05.000Z',
  }),
  appView('shop', { displayName: 'Shop', isolation: { mode: 'worker', memoryMb: 41 } }),
  appView('crm', {
    displayName: 'CRM',
    status: 'error',
    database: { mode: 'new-connection', dialect: 'mysql', name: 'crm', schema: null },
    error: { code: 'APP_ERROR', message: LONG_ERROR },
  }),
  appView('wiki', { status: 'disabled', enabled: false, lastReconciledAt: null }),
  appView('legacy', { status: 'needs-upgrade' }),
];

const HISTORY: HistoryEntry[] = [
  {
    app: 'blog',
    reconcileId: 'rec-2',
    at: '2024-05-01T10:00:00.000Z',
    outcome: 'updated',
    steps: [{ action: 'update-routes', detail: 'domains blog.example', result: 'updated' }],
    durationMs: 14,
  },
  {
    app: 'blog',
    reconcileId: 'rec-1',
    at: '2024-04-30T09:00:00.000Z',
    outcome: 'failed',
    steps: [{ action: 'create-schema', detail: 'schema blog in main', result: 'failed' }],
    error: { code: 'DB_UNREACHABLE', message: 'cannot reach postgres server 127.0.0.1:5432: ECONNREFUSED' },
    durationMs: 1200,
  },
];

/** What the user sees of an element (playwright's rendered text, not the DOM property). */
const shown = (locator: Locator): Promise<string> => locator.innerText();
const badge = (page: Page, app: string) => page.locator(`tr[data-app="${app}"] .col-status .badge`);
const row = (page: Page, app: string) => page.locator(`tr[data-app="${app}"]`);

/** Signs in through the form and waits for the list and the live feed. */
async function signIn(page: Page, base: string, token = TOKEN): Promise<void> {
  await page.goto(`${base}/_supervisor/`);
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="live"]').waitFor();
}

describe.skipIf(!browserAvailable())('admin UI in Chromium (fake backend)', () => {
  let browser: Browser;
  let server: UiServer;
  let requests: string[];
  let current: PageRecord | undefined;
  /** Console errors a test expects (a 401 the browser logs, say). */
  let allowedErrors: RegExp | undefined;

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    server = await startUiServer(TOKEN);
    browser = await launchBrowser();
    requests = recordRequests(browser.context);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  beforeEach(async () => {
    server.backend.reset(APPS);
    server.backend.histories.set('blog', HISTORY);
    allowedErrors = undefined;
    requests.length = 0;
    current = await openPage(browser.context);
  });
  afterEach(async () => {
    const record = current!;
    current = undefined;
    await record.page.close();
    const unexpected = record.errors.filter((e) => !allowedErrors?.test(e));
    expect(unexpected, 'console errors').toEqual([]);
    expect(
      requests.filter((url) => !isLocal(url)),
      'requests to other hosts',
    ).toEqual([]);
    expect(
      requests.filter((url) => url.includes(TOKEN) || url.includes(encodeURIComponent(TOKEN))),
      'the token in a URL',
    ).toEqual([]);
  });

  it('loads with no errors, a lang attribute and the sign-in form', async () => {
    const { page } = current!;
    const res = await page.goto(`${server.base}/_supervisor/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/^default-src 'self'/);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await page.getByLabel('Admin token').waitFor();
    expect(await page.getByLabel('Admin token').getAttribute('type')).toBe('password');
    expect(await page.locator('#console').isHidden()).toBe(true);
    // Everything came from this server: the page, its script modules, its stylesheet and icon.
    expect(requests.some((url) => url.endsWith('/_supervisor/app.js'))).toBe(true);
    expect(requests.some((url) => url.endsWith('/_supervisor/app.css'))).toBe(true);
  });

  it('refuses a wrong token with a message and keeps nothing', async () => {
    allowedErrors = /401 \(Unauthorized\)/;
    const { page } = current!;
    await page.goto(`${server.base}/_supervisor/`);
    await page.getByLabel('Admin token').fill('not-the-token-0123456789');
    await page.getByLabel('Admin token').press('Enter');
    await page.locator('#signin-message', { hasText: 'not accepted' }).waitFor();
    expect(await page.locator('#console').isHidden()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator('#apps-body tr').count()).toBe(0);
  });

  it('signs in with the right token and lists every app with its fields', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    expect(await page.locator('#apps-body tr').count()).toBe(APPS.length);
    expect(await page.evaluate(() => sessionStorage.getItem('appvisor.adminToken'))).toBe(TOKEN);
    expect(page.url()).toBe(`${server.base}/_supervisor/`);

    const blog = row(page, 'blog');
    expect(await shown(blog.locator('.col-name'))).toContain('Company blog');
    expect(await shown(badge(page, 'blog'))).toBe('running');
    expect(await shown(blog.locator('.col-startMode'))).toBe('with-main');
    expect(await shown(blog.locator('.col-database'))).toBe('new-schema\npostgres · main/blog');
    expect(await shown(blog.locator('.col-domains'))).toBe('blog.example');
    expect(await shown(blog.locator('.col-secret'))).toBe('shared');
    expect(await blog.locator('.col-reconciled time').getAttribute('datetime')).toBe(
      '2024-05-01T10:00:00.000Z',
    );
    expect(await shown(row(page, 'wiki').locator('.col-reconciled'))).toBe('never');
    expect(await shown(row(page, 'wiki').locator('.col-startMode'))).toContain('(disabled)');
    // An isolated app says where it runs; a shared one does not.
    expect(await shown(row(page, 'shop').locator('.col-startMode'))).toBe('on-first-visit · worker');

    // Status colour by family, and the word itself; the list is sorted by name.
    const tones = await page.$$eval('#apps-body .col-status .badge', (els) =>
      els.map((el) => [el.textContent, el.className]),
    );
    expect(tones).toEqual([
      ['running', 'badge badge-ok'],
      ['error', 'badge badge-bad'],
      ['needs-upgrade', 'badge badge-bad'],
      ['stopped', 'badge badge-idle'],
      ['disabled', 'badge badge-idle'],
    ]);

    // A long error is cut, and the full text is one click away.
    const error = row(page, 'crm').locator('.col-error details');
    const summary = await shown(error.locator('summary'));
    expect(summary.endsWith('…')).toBe(true);
    expect(summary.length).toBeLessThan(LONG_ERROR.length);
    expect(await error.locator('.error-full').isVisible()).toBe(false);
    await error.locator('summary').click();
    expect(await shown(error.locator('.error-full'))).toBe(`APP_ERROR: ${LONG_ERROR}`);
  });

  it('Stop: the row goes stopping then stopped live, without a reload', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    await page.evaluate(() => {
      window.marker = 42;
    });
    const stop = row(page, 'blog').getByRole('button', { name: 'Stop blog' });
    await stop.click();
    await badge(page, 'blog')
      .filter({ hasText: /^stopping$/ })
      .waitFor();
    expect(server.backend.calls).toEqual(['stop blog']);
    expect(await stop.getAttribute('aria-disabled')).toBe('true');

    server.backend.settle('blog');
    await badge(page, 'blog')
      .filter({ hasText: /^stopped$/ })
      .waitFor();
    expect(await badge(page, 'blog').getAttribute('class')).toBe('badge badge-idle');
    await page.locator('#announcer', { hasText: 'blog is now stopped' }).waitFor();
    expect(await page.evaluate(() => window.marker)).toBe(42);
    expect(requests.filter((url) => url.endsWith('/_supervisor/')).length).toBe(1);
    expect(await stop.getAttribute('aria-disabled')).toBe('true');
    expect(
      await row(page, 'blog').getByRole('button', { name: 'Start blog' }).getAttribute('aria-disabled'),
    ).toBe(null);
  });

  it('Start: the row goes starting then running live', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    await row(page, 'shop').getByRole('button', { name: 'Start shop' }).click();
    await badge(page, 'shop')
      .filter({ hasText: /^starting$/ })
      .waitFor();
    expect(server.backend.calls).toEqual(['start shop']);
    server.backend.settle('shop');
    await badge(page, 'shop')
      .filter({ hasText: /^running$/ })
      .waitFor();
    expect(await badge(page, 'shop').getAttribute('class')).toBe('badge badge-ok');
  });

  it("shows the API's message when a start is refused", async () => {
    allowedErrors = /503 \(Service Unavailable\)/;
    const { page } = current!;
    server.backend.refuse.set('wiki', new AppvisorError('APP_DISABLED', { app: 'wiki' }));
    await signIn(page, server.base);
    await row(page, 'wiki').getByRole('button', { name: 'Start wiki' }).click();
    await row(page, 'wiki')
      .locator('.row-message', { hasText: 'Start refused: app wiki is disabled' })
      .waitFor();
    expect(await shown(badge(page, 'wiki'))).toBe('disabled');
    expect(
      await row(page, 'wiki').getByRole('button', { name: 'Start wiki' }).getAttribute('aria-disabled'),
    ).toBe(null);
  });

  it('applies status events from the server as they come, errors included', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    // The main app's events (it is not in the list) are ignored, not looked up.
    server.backend.events.emit('status', {
      app: 'main',
      status: 'running',
      previous: 'starting',
      error: null,
      at: new Date().toISOString(),
    });
    server.backend.setStatus('legacy', 'upgrading');
    await badge(page, 'legacy')
      .filter({ hasText: /^upgrading$/ })
      .waitFor();
    expect(await badge(page, 'legacy').getAttribute('class')).toBe('badge badge-busy');
    server.backend.setStatus('legacy', 'error', { code: 'APP_ERROR', message: 'migration 3 failed' });
    await badge(page, 'legacy')
      .filter({ hasText: /^error$/ })
      .waitFor();
    expect(await shown(row(page, 'legacy').locator('.col-error'))).toBe('APP_ERROR: migration 3 failed');
    await page.locator('#announcer', { hasText: 'legacy is now error: migration 3 failed' }).waitFor();

    // An app added after the snapshot shows up on its first event.
    server.backend.apps.set('docs', appView('docs'));
    server.backend.setStatus('docs', 'provisioning');
    await badge(page, 'docs')
      .filter({ hasText: /^provisioning$/ })
      .waitFor();
  });

  it('reconnects when the event stream drops and keeps updating', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    const opened = server.streamsOpened();
    const again = page.waitForRequest((req) => req.url().endsWith('/_supervisor/api/events'));
    server.dropStreams();
    await again;
    await page.locator('#connection[data-state="live"]').waitFor();
    expect(server.streamsOpened()).toBe(opened + 1);
    server.backend.setStatus('shop', 'starting');
    await badge(page, 'shop')
      .filter({ hasText: /^starting$/ })
      .waitFor();
  });

  it('returns to the sign-in form when the token stops working', async () => {
    allowedErrors = /401 \(Unauthorized\)/;
    const { page } = current!;
    await signIn(page, server.base);
    server.rotateToken('another-admin-token-0123456789');
    try {
      await page.locator('#signin-message', { hasText: 'did not accept the admin token' }).waitFor();
      expect(await page.locator('#console').isHidden()).toBe(true);
      expect(await page.locator('#apps-body tr').count()).toBe(0);
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('token');
    } finally {
      server.rotateToken(TOKEN);
    }
  });

  it('signs out, forgetting the token and the list; a reload keeps a signed-in session', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    await page.reload();
    await page.locator('#connection[data-state="live"]').waitFor();
    expect(await page.locator('#apps-body tr').count()).toBe(APPS.length);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#signin-message', { hasText: 'Signed out.' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator('#apps-body tr').count()).toBe(0);
  });

  it('Visit opens the app in a new tab: its path, or its first domain on this port', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    const shop = row(page, 'shop').getByRole('link', { name: /Visit shop/ });
    expect(await shop.getAttribute('href')).toBe('/apps/shop/admin/');
    expect(await shop.getAttribute('target')).toBe('_blank');
    expect(await shop.getAttribute('rel')).toContain('noopener');
    const blog = row(page, 'blog').getByRole('link', { name: /Visit blog/ });
    expect(await blog.getAttribute('href')).toBe(`http://blog.example:${server.port}/admin/`);
    expect(await blog.getAttribute('target')).toBe('_blank');

    const [tab] = await Promise.all([browser.context.waitForEvent('page'), shop.click()]);
    await tab.waitForLoadState();
    expect(tab.url()).toBe(`${server.base}/apps/shop/admin/`);
    expect(page.url()).toBe(`${server.base}/_supervisor/`);
    await tab.close();
  });

  it('the detail view shows every field, the manifest file and the reconcile history', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    // The list names the application under the app's names; an app the server says nothing of: none.
    expect(await shown(row(page, 'blog').locator('.app-application'))).toBe('cms-app v3 (cms)');
    expect(await shown(row(page, 'shop').locator('.app-application'))).toBe('');
    const open = row(page, 'blog').getByRole('button', { name: 'blog details' });
    await open.click();
    const dialog = page.locator('dialog#detail[open]');
    await dialog.waitFor();
    const fields = await dialog.locator('.field').allInnerTexts();
    expect(fields.map((f) => f.replace(/\s*\n+\s*/g, ': '))).toEqual(
      expect.arrayContaining([
        'Display name: Company blog',
        'Status: running',
        'Database mode: new-schema',
        'Schema: blog',
        'Domains: blog.example',
        'JWT secret: shared',
        'Application: cms-app v3 (cms)',
        'Manifest file: blog.yaml',
      ]),
    );
    const entries = dialog.locator('.history-entry');
    await entries.first().waitFor();
    expect(await entries.count()).toBe(2);
    expect(await shown(entries.nth(0))).toContain('update-routes domains blog.example → updated');
    expect(await shown(entries.nth(1).locator('[data-outcome]'))).toBe('failed');
    expect(await shown(entries.nth(1))).toContain('DB_UNREACHABLE: cannot reach postgres server');

    // Live while open.
    server.backend.setStatus('blog', 'stopping');
    await dialog.locator('.field .badge', { hasText: /^stopping$/ }).waitFor();

    await page.screenshot({ path: join(ARTIFACTS, 'admin-detail.png') });
    await page.keyboard.press('Escape');
    await page.locator('dialog#detail').waitFor({ state: 'hidden' });
    expect(await page.evaluate(() => document.activeElement?.classList.contains('app-name'))).toBe(true);
  });

  it("the detail view charts the app's last hour, with the latest values as text beside the charts", async () => {
    const { page } = current!;
    const figures = server.backend.figures;
    for (let i = 0; i < 40; i++) figures.answered(figures.opened('shop')!, i < 10 ? 500 : 200, 20);
    figures.opened('shop');
    figures.memory('shop', 41);
    // Another live replica that does not answer (nothing listens on port 1): its share is missing.
    server.backend.peers = [{ id: 'replica-b', url: 'http://127.0.0.1:1' }];
    await signIn(page, server.base);
    await row(page, 'shop').getByRole('button', { name: 'shop details' }).click();
    const dialog = page.locator('dialog#detail[open]');
    const charts = dialog.locator('.figure-chart');
    await charts.first().waitFor();
    // Requests, latency, 5xx, open connections, and memory for an isolated app.
    expect(await charts.count()).toBe(5);
    expect(await dialog.locator('.figure-chart canvas').count()).toBe(5);
    const text = async (figure: string) => shown(dialog.locator(`.figure[data-figure="${figure}"] dd`));
    expect(await text('errors')).toBe('25 %');
    expect(await text('open')).toBe('1');
    expect(await text('memory')).toBe('41 MiB');
    expect(await text('latency')).toMatch(/^\d+(\.\d+)? \/ \d+(\.\d+)? ms$/);
    expect(
      Number(await dialog.locator('.figure-chart[data-chart="rps"]').getAttribute('data-max')),
    ).toBeGreaterThan(0);
    expect(await shown(dialog.locator('.figure-replicas'))).toBe(
      'Figures of 1 of 2 replicas only: replica replica-b did not answer; its requests are not counted.',
    );
    await dialog.locator('.figures').screenshot({ path: join(ARTIFACTS, 'admin-detail-figures.png') });

    // A shared app has no memory chart; with every replica answering, no line about them.
    server.backend.peers = [];
    await page.keyboard.press('Escape');
    await row(page, 'blog').getByRole('button', { name: 'blog details' }).click();
    await dialog.locator('.figure-chart').first().waitFor();
    expect(await dialog.locator('.figure-chart').count()).toBe(4);
    expect(await dialog.locator('.figure-replicas').isHidden()).toBe(true);
    expect(await text('rps')).toBe('0 req/s');
  });

  it('the Logs tab shows recent lines, follows new ones, pauses, and stops following when closed', async () => {
    const { page } = current!;
    server.backend.log('blog', 30, 'served /');
    server.backend.log('blog', 50, '<img src=x onerror="window.pwned=1">', { marker: '<b>bold</b>' });
    server.backend.log('shop', 30, 'not blog');
    await signIn(page, server.base);
    await row(page, 'blog').getByRole('button', { name: 'blog details' }).click();
    const dialog = page.locator('dialog#detail[open]');
    expect(server.backend.following).toBe(0);
    // The tabs follow the ARIA pattern: an arrow moves to Logs (and the focus with it).
    await dialog.getByRole('tab', { name: 'Overview' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await dialog.getByRole('tab', { name: 'Logs' }).getAttribute('aria-selected')).toBe('true');
    expect(await dialog.locator('#detail-panel-overview').isVisible()).toBe(false);
    await page.keyboard.press('ArrowLeft');
    expect(await dialog.locator('#detail-panel-overview').isVisible()).toBe(true);
    await dialog.getByRole('tab', { name: 'Logs' }).click();
    const lines = dialog.locator('.log-line');
    await lines.nth(1).waitFor();
    expect(await lines.count()).toBe(2);
    expect(await shown(lines.nth(0).locator('.log-level'))).toBe('info');
    expect(await shown(lines.nth(0).locator('.log-replica'))).toBe('replica-a');
    expect(await shown(lines.nth(0).locator('.log-msg'))).toBe('served /');
    // Hostile text stays text.
    expect(await shown(lines.nth(1).locator('.log-level'))).toBe('error');
    expect(await shown(lines.nth(1).locator('.log-msg'))).toBe('<img src=x onerror="window.pwned=1">');
    expect(await shown(lines.nth(1).locator('.log-fields'))).toContain('<b>bold</b>');
    expect(await dialog.locator('.log-lines img, .log-lines b').count()).toBe(0);
    expect(await page.evaluate(() => window.pwned)).toBeUndefined();

    // New lines come in as they are logged, and the newest stays in sight.
    for (let i = 0; i < 60; i++) server.backend.log('blog', 40, `line ${i}`);
    await dialog.locator('.log-line', { hasText: 'line 59' }).waitFor();
    const atBottom = () =>
      page.evaluate(() => {
        const list = document.querySelector('.log-lines') as unknown as {
          scrollTop: number;
          clientHeight: number;
          scrollHeight: number;
        };
        return list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
      });
    expect(await atBottom()).toBe(true);
    expect(await shown(dialog.locator('.log-line', { hasText: 'line 59' }).locator('.log-level'))).toBe(
      'warn',
    );

    // Scrolled up, a new line does not pull the reader down.
    await dialog.locator('.log-lines').evaluate((el) => {
      (el as unknown as { scrollTop: number }).scrollTop = 0;
    });
    await dialog.getByRole('button', { name: 'Jump to latest' }).waitFor();
    server.backend.log('blog', 30, 'while scrolled up');
    await dialog.locator('.log-line', { hasText: 'while scrolled up' }).waitFor();
    expect(await atBottom()).toBe(false);
    await dialog.getByRole('button', { name: 'Jump to latest' }).click();
    expect(await atBottom()).toBe(true);

    // Pause holds new lines back; Resume shows them.
    await dialog.getByRole('button', { name: 'Pause' }).click();
    server.backend.log('blog', 30, 'held back');
    await dialog.locator('.log-state', { hasText: '1 new line held back' }).waitFor();
    expect(await dialog.locator('.log-line', { hasText: 'held back' }).count()).toBe(0);
    await dialog.getByRole('button', { name: 'Resume' }).click();
    await dialog.locator('.log-line', { hasText: 'held back' }).waitFor();

    expect(server.backend.following).toBe(1);
    await page.keyboard.press('Escape');
    await waitFor(() => server.backend.following === 0, 'the log stream to close');
  });

  it('the Logs tab says whose lines are missing when another replica does not answer', async () => {
    const { page } = current!;
    // Port 9: nothing listens there, so the fan-out reports replica-b unreachable.
    server.backend.peers = [{ id: 'replica-b', url: 'http://127.0.0.1:9' }];
    server.backend.log('blog', 30, 'from replica-a');
    await signIn(page, server.base);
    await row(page, 'blog').getByRole('button', { name: 'blog details' }).click();
    const dialog = page.locator('dialog#detail[open]');
    await dialog.getByRole('tab', { name: 'Logs' }).click();
    await dialog.locator('.log-line', { hasText: 'from replica-a' }).waitFor();
    await dialog
      .locator('.log-state', { hasText: 'Lines of replica replica-b are missing: it does not answer.' })
      .waitFor();
    // Following goes on for the replicas that answer.
    server.backend.log('blog', 30, 'still following');
    await dialog.locator('.log-line', { hasText: 'still following' }).waitFor();
  });

  it('sparkline() draws a small chart named by its label and latest value, and updates it', async () => {
    const { page } = current!;
    await page.goto(`${server.base}/_supervisor/`);
    // A string, so that vitest does not rewrite the import() meant for the browser.
    const drawn = await page.evaluate(`(async () => {
      const { sparkline } = await import('/_supervisor/charts.js');
      const box = document.createElement('div');
      document.body.append(box);
      const line = sparkline(box, [0, 2, null, 5], { label: 'blog requests/s' });
      const first = box.querySelector('.sparkline').getAttribute('aria-label');
      const canvases = box.querySelectorAll('canvas').length;
      line.update([1, 0.25]);
      const second = box.querySelector('.sparkline').getAttribute('aria-label');
      line.destroy();
      return { first, second, canvases, left: box.children.length };
    })()`);
    expect(drawn).toEqual({
      first: 'blog requests/s: latest 5',
      second: 'blog requests/s: latest 0.25',
      canvases: 1,
      left: 0,
    });
  });

  it('Rotate secret in the detail view asks first, then rotates and shows both key ids', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    // A shared-secret app has no secret of its own to rotate.
    await row(page, 'blog').getByRole('button', { name: 'blog details' }).click();
    const dialog = page.locator('dialog#detail[open]');
    await dialog.waitFor();
    expect(await dialog.getByRole('button', { name: 'Rotate secret' }).count()).toBe(0);
    await page.keyboard.press('Escape');
    await page.locator('dialog#detail').waitFor({ state: 'hidden' });

    await row(page, 'shop').getByRole('button', { name: 'shop details' }).click();
    await dialog.waitFor();
    const rotate = dialog.getByRole('button', { name: 'Rotate secret' });
    // Dismissed: nothing is asked of the server.
    page.once('dialog', (d) => void d.dismiss());
    await rotate.click();
    expect(server.backend.calls.filter((c) => c.startsWith('rotate-secret'))).toEqual([]);
    const asked: string[] = [];
    page.once('dialog', (d) => {
      asked.push(d.message());
      void d.accept();
    });
    await rotate.click();
    await dialog.getByText(/New key 0a1b2c3d; tokens of key 9f8e7d6c stay valid until/).waitFor();
    expect(asked[0]).toContain('shop');
    expect(server.backend.calls.filter((c) => c.startsWith('rotate-secret'))).toEqual([
      'rotate-secret shop 3600000 token APPVISOR_ADMIN_TOKEN via admin-ui',
    ]);
  });

  it('Backup in the detail view saves the archive as a download and names the file', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    await row(page, 'shop').getByRole('button', { name: 'shop details' }).click();
    const dialog = page.locator('dialog#detail[open]');
    await dialog.waitFor();
    const downloaded = page.waitForEvent('download');
    await dialog.getByRole('button', { name: 'Backup' }).click();
    const file = await downloaded;
    expect(file.suggestedFilename()).toBe('shop-20260102T030405Z.tar.gz');
    expect(await readFile((await file.path())!, 'utf8')).toBe('archive of shop');
    await dialog.getByText('Saved shop-20260102T030405Z.tar.gz (15 B).').waitFor();
    expect(server.backend.calls.filter((c) => c.startsWith('backup'))).toEqual([
      'backup shop token APPVISOR_ADMIN_TOKEN via admin-ui',
    ]);
  });

  it('the Replicas panel lists every replica, the leader and the dead marked; each app counts its replicas', async () => {
    const { page } = current!;
    server.backend.replicas = [
      replicaView('host-a-1-aaaa', {
        self: true,
        leader: true,
        apps: { blog: { status: 'running', startedAt: '2024-05-01T10:00:00.000Z' } },
      }),
      replicaView('host-b-2-bbbb', { host: 'host-b', pid: 2, drift: ['crm'] }),
      replicaView('host-c-3-cccc', { host: 'host-c', live: false, apps: { blog: { status: 'running' } } }),
    ];
    await signIn(page, server.base);
    const rows = page.locator('#replicas-body tr');
    await expect.poll(() => rows.count()).toBe(3);
    const replica = (id: string) => page.locator(`#replicas-body tr[data-replica="${id}"]`);
    expect(await replica('host-a-1-aaaa').locator('[data-role="leader"]').count()).toBe(1);
    expect(await shown(replica('host-a-1-aaaa'))).toContain('(this one)');
    expect(await replica('host-b-2-bbbb').locator('[data-role="leader"]').count()).toBe(0);
    expect(await shown(replica('host-b-2-bbbb'))).toContain('crm');
    expect(await shown(replica('host-c-3-cccc').locator('.col-live'))).toBe('dead');
    expect(await shown(page.locator('#replicas-summary'))).toBe('2 live, 1 dead');
    // The dead replica counts nowhere: blog runs on one of the two live ones.
    await expect
      .poll(() => shown(row(page, 'blog').locator('.col-status .replica-count')))
      .toBe('running on 1/2');

    await row(page, 'blog').getByRole('button', { name: 'blog details' }).click();
    const onReplicas = page.locator('dialog#detail .replica-statuses li');
    await expect
      .poll(() => onReplicas.allInnerTexts())
      .toEqual([expect.stringMatching(/^host-a-1-aaaa running since /), 'host-b-2-bbbb stopped']);

    // The next poll brings blog's start on the other replica, into the list and the open detail.
    server.backend.replicas = server.backend.replicas.map((r) =>
      r.id === 'host-b-2-bbbb' ? { ...r, apps: { blog: { status: 'starting' } } } : r,
    );
    await expect.poll(() => onReplicas.nth(1).innerText(), { timeout: 5_000 }).toBe('host-b-2-bbbb starting');
    await page.keyboard.press('Escape');
    expect(await shown(row(page, 'blog').locator('.col-status .replica-count'))).toBe('running on 1/2');
    await page.screenshot({ path: join(ARTIFACTS, 'admin-replicas.png'), fullPage: true });
  });

  it('the plan view shows invalid manifests, signed changes and the guard; Refresh reloads it', async () => {
    const { page } = current!;
    server.backend.planJson = {
      changes: [
        { app: 'docs', action: 'create-database', detail: 'database docs on sqlite' },
        { app: 'docs', action: 'generate-secret', detail: 'own JWT secret (sensitive)' },
        { app: 'blog', action: 'update-routes', detail: 'domains: + news.example' },
        { app: 'legacy', action: 'upgrade', detail: 'data version 2 -> 3' },
        { app: 'old', action: 'orphan', detail: 'manifest removed; data retained' },
        { app: 'crm', action: 'refuse', detail: 'database crm exists and was not created by appvisor' },
      ],
      errors: [{ file: 'apps.d/broken.yaml', line: 3, column: 5, message: 'unknown field "startmode"' }],
      guard: 'apps.d is empty: not removing 4 apps (use --allow-empty)',
    };
    await signIn(page, server.base);
    await page.getByRole('tab', { name: 'Plan' }).click();
    const lines = page.locator('.plan-changes li');
    await lines.first().waitFor();
    expect(await page.locator('.plan-errors li').allInnerTexts()).toEqual([
      'apps.d/broken.yaml:3:5: unknown field "startmode"',
    ]);
    expect(await lines.allInnerTexts()).toEqual([
      '+ docs create-database database docs on sqlite',
      '+ docs generate-secret own JWT secret (sensitive)',
      '~ blog update-routes domains: + news.example',
      '~ legacy upgrade data version 2 -> 3',
      '- old orphan manifest removed; data retained',
      '! crm refuse database crm exists and was not created by appvisor',
    ]);
    expect(await shown(page.locator('.plan-guard'))).toBe(
      'apps.d is empty: not removing 4 apps (use --allow-empty)',
    );

    await page.screenshot({ path: join(ARTIFACTS, 'admin-plan.png'), fullPage: true });

    server.backend.planJson = { changes: [], errors: [] };
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.locator('.plan-empty', { hasText: 'No changes' }).waitFor();
    expect(await page.locator('.plan-errors').count()).toBe(0);
    expect(await page.locator('.plan-guard').count()).toBe(0);
  });

  it('shows a scheduled drop with its time, and who stopped an app', async () => {
    const { page } = current!;
    server.backend.apps.set(
      'sandbox',
      appView('sandbox', { status: 'orphaned', dropAt: '2026-12-03T20:00:00Z' }),
    );
    server.backend.apps.set(
      'paused',
      appView('paused', {
        status: 'stopped',
        intent: { action: 'stop', by: 'admin token via admin-ui', at: '2026-12-02T10:00:00.000Z' },
      }),
    );
    await signIn(page, server.base);
    // Long notices are cut in the list, the whole text one click away.
    expect(await shown(row(page, 'sandbox').locator('summary.error-text'))).toMatch(
      /^Data drop scheduled for 2026-12-03T20:00:00Z; put the/,
    );
    expect(await row(page, 'sandbox').locator('.error-full').textContent()).toBe(
      'Data drop scheduled for 2026-12-03T20:00:00Z; put the manifest back to cancel it',
    );
    expect(await row(page, 'paused').locator('.error-full').textContent()).toBe(
      'Stopped by admin token via admin-ui at 2026-12-02T10:00:00.000Z',
    );
  });

  it('shows hostile text from the API as text', async () => {
    const { page } = current!;
    const evil = '<img src=x onerror="window.pwned=1">';
    server.backend.apps.set(
      'evil',
      appView('evil', { displayName: evil, error: { code: 'APP_ERROR', message: evil } }),
    );
    await signIn(page, server.base);
    expect(await shown(row(page, 'evil').locator('.display-name'))).toBe(evil);
    expect(await page.locator('#apps-body img').count()).toBe(0);
    expect(await page.evaluate(() => window.pwned)).toBeUndefined();
  });

  it('is keyboard-usable: Tab reaches the token field and the buttons; Enter and Space work', async () => {
    const { page } = current!;
    await page.goto(`${server.base}/_supervisor/`);
    await page.getByLabel('Admin token').waitFor();
    await page.evaluate(() => document.activeElement?.blur());

    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement;
        return el ? `${el.tagName.toLowerCase()}#${el.id}|${el.textContent?.trim() ?? ''}` : '';
      });
    const tabTo = async (match: (f: string) => boolean, max = 60): Promise<string> => {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press('Tab');
        const f = await focused();
        if (match(f)) return f;
      }
      throw new Error(`Tab never reached the element (last: ${await focused()})`);
    };

    await tabTo((f) => f.startsWith('input#token'));
    await page.keyboard.type(TOKEN);
    await tabTo((f) => f.startsWith('button#signin-submit'));
    // The focus ring is visible on keyboard focus.
    expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe(
      'none',
    );
    await page.keyboard.press('Enter');
    await page.locator('#connection[data-state="live"]').waitFor();

    await tabTo((f) => f.includes('|Stop blog'));
    await page.keyboard.press('Space');
    await badge(page, 'blog')
      .filter({ hasText: /^stopping$/ })
      .waitFor();
    // The pressed button keeps the focus (it is aria-disabled, not disabled).
    expect(await focused()).toContain('|Stop blog');
    server.backend.settle('blog');
    await badge(page, 'blog')
      .filter({ hasText: /^stopped$/ })
      .waitFor();

    await page.keyboard.press('Shift+Tab');
    expect(await focused()).toContain('|Start blog');
    await page.keyboard.press('Enter');
    await badge(page, 'blog')
      .filter({ hasText: /^starting$/ })
      .waitFor();

    // The tabs follow the ARIA pattern: arrows move between them.
    await page.getByRole('tab', { name: 'Apps' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Plan' }).getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('#panel-plan').isVisible()).toBe(true);
    expect(await page.locator('#panel-apps').isVisible()).toBe(false);
  });

  it('badges and buttons have enough contrast (WCAG AA)', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    const ratios = await page.$$eval('.badge, button:not([aria-disabled]), .button-link, .summary', (els) => {
      const rgb = (css: string): number[] => (css.match(/[\d.]+/g) ?? []).slice(0, 3).map(Number);
      const lum = ([r, g, b]: number[]): number => {
        const c = [r!, g!, b!].map((v) => {
          const s = v / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * c[0]! + 0.7152 * c[1]! + 0.0722 * c[2]!;
      };
      const background = (el: BrowserElement | null): string => {
        for (let e = el; e; e = e.parentElement) {
          const bg = getComputedStyle(e).backgroundColor;
          if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') return bg;
        }
        return 'rgb(255, 255, 255)';
      };
      return els.map((el) => {
        const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(background(el)))];
        return { text: el.textContent, ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
      });
    });
    expect(ratios.length).toBeGreaterThan(10);
    expect(ratios.filter((r) => r.ratio < 4.5)).toEqual([]);
  });

  it('fits a 375 px wide screen as cards; saves screenshots of the list', async () => {
    const { page } = current!;
    await signIn(page, server.base);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-list.png'), fullPage: true });
    expect(await page.locator('#apps thead').isVisible()).toBe(true);
    const wide = await page.evaluate(() => {
      const wrap = document.querySelector('.table-wrap')!;
      return { scroll: wrap.scrollWidth, client: wrap.clientWidth };
    });
    expect(wide.scroll, 'the table fits 1280 px').toBeLessThanOrEqual(wide.client);

    await page.setViewportSize({ width: 375, height: 800 });
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      rowDisplay: getComputedStyle(document.querySelector('#apps-body tr')!).display,
      label: getComputedStyle(document.querySelector('#apps-body td.col-database')!, '::before').content,
    }));
    expect(layout.scrollWidth).toBeLessThanOrEqual(375);
    expect(layout.rowDisplay).toBe('block');
    expect(layout.label).toBe('"Database"');
    const stop = row(page, 'blog').getByRole('button', { name: 'Stop blog' });
    const box = await stop.boundingBox();
    expect(box!.height).toBeGreaterThanOrEqual(40);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-list-mobile.png'), fullPage: true });
    expect(existsSync(join(ARTIFACTS, 'admin-list.png'))).toBe(true);
    expect(existsSync(join(ARTIFACTS, 'admin-list-mobile.png'))).toBe(true);
  });

  it.each([
    ['one event', ['event: snapshot\ndata: [1]\nid: 1\n\n'], [{ type: 'snapshot', data: '[1]', id: '1' }]],
    [
      'chunks split mid-line and inside a CRLF',
      ['event: sta', 'tus\r', '\ndata: {"a":1}\r\n\r', '\n'],
      [{ type: 'status', data: '{"a":1}', id: '' }],
    ],
    ['comments skipped', [': heartbeat\n\n', 'data: x\n\n'], [{ type: 'message', data: 'x', id: '' }]],
    ['data lines joined', ['data: a\ndata: b\n\n'], [{ type: 'message', data: 'a\nb', id: '' }]],
    ['no space, bare field', ['data:x\ndata\n\n'], [{ type: 'message', data: 'x\n', id: '' }]],
    ['CR line ends', ['data: y\r\rz'], [{ type: 'message', data: 'y', id: '' }]],
    ['a leading BOM', ['\uFEFFdata: b\n\n'], [{ type: 'message', data: 'b', id: '' }]],
    [
      'no data, no event; the type resets',
      ['event: a\n\ndata: z\n\n'],
      [{ type: 'message', data: 'z', id: '' }],
    ],
    [
      'the id persists',
      ['id: 7\ndata: a\n\ndata: b\n\n'],
      [
        { type: 'message', data: 'a', id: '7' },
        { type: 'message', data: 'b', id: '7' },
      ],
    ],
    ['an incomplete event waits', ['data: partial\n'], []],
  ])('the SSE parser (in the page): %s', async (_name, chunks, expected) => {
    const { page } = current!;
    await page.goto(`${server.base}/_supervisor/`);
    // A string, so that vitest does not rewrite the import() meant for the browser.
    const events = await page.evaluate(`(async () => {
      const { SseParser } = await import('/_supervisor/sse.js');
      const parser = new SseParser();
      return ${JSON.stringify(chunks)}.flatMap((chunk) => parser.push(chunk));
    })()`);
    expect(events).toEqual(expected);
  });
});

/** The real supervisor (SPEC §6); this part runs once it exists. */
const SUPERVISOR = join(process.cwd(), 'src/serve/supervisor.ts');
const REAL_TOKEN = 'a-test-token-0123456789';

describe.skipIf(!browserAvailable() || !existsSync(SUPERVISOR))(
  'admin UI in Chromium (real supervisor)',
  () => {
    let browser: Browser;
    let serve: Serve;
    let requests: string[];

    beforeAll(async () => {
      serve = await startServe({
        manifests: {
          'alpha.yaml': manifest('alpha', 'displayName: Alpha app\nstartMode: with-main\n'),
          'beta.yaml': manifest('beta', 'displayName: Beta app\n'),
        },
        supervisor: { env: { APPVISOR_ADMIN_TOKEN: REAL_TOKEN } },
      });
      browser = await launchBrowser();
      requests = recordRequests(browser.context);
    });
    afterAll(async () => {
      await browser?.close();
      await serve?.close();
      if (serve) await rm(serve.dir, { recursive: true, force: true });
    });

    it('signs in, operates the apps live, opens Visit, and shows a broken manifest in the plan', async () => {
      const { page, errors } = await openPage(browser.context);
      const base = serve.sup.url;
      await signIn(page, base, REAL_TOKEN);
      await badge(page, 'alpha')
        .filter({ hasText: /^running$/ })
        .waitFor();
      await badge(page, 'beta')
        .filter({ hasText: /^stopped$/ })
        .waitFor();
      expect(await page.locator('#apps-body tr').count()).toBe(2);
      expect(await shown(row(page, 'alpha').locator('.display-name'))).toBe('Alpha app');
      expect(await shown(row(page, 'alpha').locator('.col-database'))).toBe('new-database\nsqlite · alpha');

      // Stop and start the running app; the row follows the runtime's status events.
      await row(page, 'alpha').getByRole('button', { name: 'Stop alpha' }).click();
      await badge(page, 'alpha')
        .filter({ hasText: /^stopped$/ })
        .waitFor();
      await row(page, 'alpha').getByRole('button', { name: 'Start alpha' }).click();
      await badge(page, 'alpha')
        .filter({ hasText: /^running$/ })
        .waitFor();

      // Visit the on-first-visit app: the gateway starts it, and the list sees that live.
      const visit = row(page, 'beta').getByRole('link', { name: /Visit beta/ });
      expect(await visit.getAttribute('href')).toBe('/apps/beta/admin/');
      const [tab] = await Promise.all([browser.context.waitForEvent('page'), visit.click()]);
      await tab.waitForLoadState();
      expect(tab.url()).toBe(`${base}/apps/beta/admin/`);
      expect(await tab.locator('body').textContent()).toContain('Beta app');
      await tab.close();
      await badge(page, 'beta')
        .filter({ hasText: /^running$/ })
        .waitFor();

      // The detail view reads the reconcile history from the state store.
      await row(page, 'alpha').getByRole('button', { name: 'alpha details' }).click();
      await page.locator('dialog#detail .history-entry').first().waitFor();
      expect(await shown(page.locator('dialog#detail .field', { hasText: 'Manifest file' }))).toContain(
        'alpha.yaml',
      );
      await page.keyboard.press('Escape');

      // Break a manifest on disk; once the watcher has read it, Refresh shows where and why.
      await page.getByRole('tab', { name: 'Plan' }).click();
      await page.locator('.plan-empty, .plan-changes').first().waitFor();
      expect(await page.locator('.plan-errors').count()).toBe(0);
      await serve.write('gamma.yaml', manifest('gamma', 'startmode: with-main\n'));
      const plan = () => serve.request('/_supervisor/api/plan', { token: REAL_TOKEN });
      await waitFor(async () => (await plan()).body?.errors?.length > 0, 'the watcher to read gamma.yaml');
      await page.getByRole('button', { name: 'Refresh' }).click();
      const line = page.locator('.plan-errors li').first();
      await line.waitFor();
      expect(await shown(line)).toMatch(/gamma\.yaml:4:1: unknown field 'startmode'/);

      expect(errors).toEqual([]);
      expect(requests.filter((url) => !isLocal(url))).toEqual([]);
      expect(requests.filter((url) => url.includes(REAL_TOKEN))).toEqual([]);
      await page.close();
    });
  },
);

/** An application whose `/log` route logs a line through its context (test/fixtures/isolation-app.ts). */
const LOGGING_APP = join(process.cwd(), 'test/fixtures/isolation-app.ts');

describe.skipIf(!browserAvailable() || !existsSync(SUPERVISOR))(
  'admin UI in Chromium (real supervisor): figures and logs',
  () => {
    let browser: Browser;
    let serve: Serve;

    beforeAll(async () => {
      serve = await startServe({
        app: LOGGING_APP,
        // The app's lines are kept as the logger writes them: at info, to nowhere.
        log: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true })),
        manifests: { 'figs.yaml': manifest('figs', 'startMode: with-main\n') },
        supervisor: { env: { APPVISOR_ADMIN_TOKEN: REAL_TOKEN } },
      });
      browser = await launchBrowser();
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
      await serve?.close();
      if (serve) await rm(serve.dir, { recursive: true, force: true });
    });

    it('charts requests sent through the gateway, refreshed while open, and follows a line the app logs', async () => {
      const { page, errors } = await openPage(browser.context);
      for (let i = 0; i < 20; i++) expect((await serve.request('/apps/figs/hello')).status).toBe(200);
      await signIn(page, serve.sup.url, REAL_TOKEN);
      await row(page, 'figs').getByRole('button', { name: 'figs details' }).click();
      const dialog = page.locator('dialog#detail[open]');
      const rps = dialog.locator('.figure-chart[data-chart="rps"]');
      await rps.waitFor();
      expect(Number(await rps.getAttribute('data-max'))).toBeGreaterThan(0);
      expect(
        Number(await dialog.locator('.figure-chart[data-chart="latency"]').getAttribute('data-max')),
      ).toBeGreaterThan(0);
      expect(await shown(dialog.locator('.figure[data-figure="rps"] dd'))).toMatch(/ req\/s$/);

      // Asked again while the view is open.
      const box = dialog.locator('.figures');
      const loaded = await box.getAttribute('data-loaded');
      await waitFor(
        async () => (await box.getAttribute('data-loaded')) !== loaded,
        'the figures to refresh',
        30_000,
      );

      // The Logs tab follows: a line the app's handler logs shows up, with its level and replica.
      await dialog.getByRole('tab', { name: 'Logs' }).click();
      await dialog.locator('.logs[data-state="following"]').waitFor();
      expect((await serve.request('/apps/figs/log?marker=from-the-e2e-test')).status).toBe(200);
      const line = dialog.locator('.log-line', { hasText: 'from-the-e2e-test' });
      await line.waitFor();
      expect(await shown(line.locator('.log-msg'))).toBe('hello from the app');
      expect(await shown(line.locator('.log-level'))).toBe('warn');
      expect(await shown(line.locator('.log-replica'))).toBe(serve.sup.replica.id);
      expect(errors).toEqual([]);
      await page.close();
    }, 60_000);
  },
);
