/**
 * The admin UI's token-aware parts in Chromium against a real `serve`: a `read` token's page
 * has no Start/Stop buttons and no Tokens view; an admin makes a token (shown once) and revokes
 * one with a confirmation in the Tokens view; the app's history shows who stopped it.
 */
import fs from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type Browser,
  browserAvailable,
  launchBrowser,
  openPage,
  type PageRecord,
  signIn,
} from '../admin/ui-harness.js';
import { ADMIN_TOKEN, manifest, type Serve, startServe, waitFor } from '../serve/harness.js';

describe.skipIf(!browserAvailable())('admin UI and named tokens in Chromium (real serve)', () => {
  let serve: Serve;
  let browser: Browser;
  let current: PageRecord | undefined;
  /** Console errors a test expects (the browser logs a refused request). */
  let allowedErrors: RegExp | undefined;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    serve = await startServe({ manifests: { 'desk.yaml': manifest('desk', 'startMode: with-main\n') } });
    await waitFor(async () => (await serve.view('desk')).status === 'running', 'desk running');
    for (const scope of ['read', 'operate'] as const) {
      const made = await serve.request('/_supervisor/api/tokens', {
        method: 'POST',
        token: ADMIN_TOKEN,
        body: { name: `${scope}-bot`, scope },
      });
      tokens[scope] = made.body.token;
    }
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await serve?.close();
    if (serve) await fs.rm(serve.dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    current = await openPage(browser.context);
    allowedErrors = undefined;
  });
  afterEach(async () => {
    const record = current!;
    current = undefined;
    await record.page.close();
    expect(
      record.errors.filter((e) => !allowedErrors?.test(e)),
      'console errors',
    ).toEqual([]);
  });

  it("shows a read token's page without Start, Stop or the Tokens view", async () => {
    const { page } = current!;
    await signIn(page, serve.sup.url, tokens.read!);
    await page.locator('tr[data-app="desk"]').waitFor();
    expect(await page.locator('#whoami').innerText()).toBe('Token read-bot (read)');
    expect(await page.locator('tr[data-app="desk"] .action-stop').isHidden()).toBe(true);
    expect(await page.locator('tr[data-app="desk"] .action-start').isHidden()).toBe(true);
    expect(await page.getByRole('button', { name: /^Stop/ }).count()).toBe(0);
    expect(await page.locator('tr[data-app="desk"] .action-visit').isVisible()).toBe(true);
    expect(await page.getByRole('tab', { name: 'Tokens' }).count()).toBe(0);
    expect(await page.getByRole('tab', { name: 'Plan' }).isVisible()).toBe(true);
  });

  it('gives an operate token Stop but no Tokens view', async () => {
    const { page } = current!;
    await signIn(page, serve.sup.url, tokens.operate!);
    await page.locator('tr[data-app="desk"] .action-stop').waitFor({ state: 'visible' });
    expect(await page.locator('#tab-tokens').isHidden()).toBe(true);
  });

  it('lets an admin make a token (shown once) and revoke one after confirming', async () => {
    const { page } = current!;
    await signIn(page, serve.sup.url, ADMIN_TOKEN);
    await page.getByRole('tab', { name: 'Tokens' }).click();
    await page.locator('#tokens-body tr[data-token="read-bot"]').waitFor();
    expect(await page.locator('#tokens-body tr').count()).toBe(2);

    await page.getByLabel('Token name').fill('ui-made');
    await page.getByLabel('Token scope').selectOption('operate');
    await page.getByRole('button', { name: 'Create token' }).click();
    const shownToken = (await page.locator('#new-token').innerText()).trim();
    expect(shownToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await page.locator('#token-created').innerText()).toMatch(
      /ui-made.*scope operate.*shown only now/s,
    );
    await page.locator('#tokens-body tr[data-token="ui-made"]').waitFor();
    const me = await serve.request('/_supervisor/api/whoami', { token: shownToken });
    expect(me.body).toEqual({ name: 'ui-made', scope: 'operate' });
    // The list never holds the token.
    expect(await page.locator('#tokens').innerText()).not.toContain(shownToken);

    // A taken name is refused with the server's message.
    allowedErrors = /409 \(Conflict\)/;
    await page.getByLabel('Token name').fill('read-bot');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page
      .locator('#token-created', { hasText: 'Not made: admin token name read-bot is taken' })
      .waitFor();

    const row = page.locator('#tokens-body tr[data-token="ui-made"]');
    await row.getByRole('button', { name: 'Revoke ui-made' }).click();
    // Nothing yet: a confirmation first, and Cancel keeps the token.
    await row.getByRole('button', { name: 'Cancel' }).click();
    expect((await serve.request('/_supervisor/api/whoami', { token: shownToken })).status).toBe(200);
    await row.getByRole('button', { name: 'Revoke ui-made' }).click();
    await row.getByRole('button', { name: 'Revoke ui-made for good' }).click();
    await page.locator('#tokens-body tr.revoked[data-token="ui-made"]').waitFor();
    expect(await page.locator('#tokens-body tr[data-token="ui-made"] button').count()).toBe(0);
    expect((await serve.request('/_supervisor/api/whoami', { token: shownToken })).status).toBe(401);
  });

  it("shows in the app's history who stopped it", async () => {
    const { page } = current!;
    await signIn(page, serve.sup.url, ADMIN_TOKEN);
    const stop = page.locator('tr[data-app="desk"] .action-stop');
    await stop.click();
    await waitFor(async () => (await serve.view('desk')).status === 'stopped', 'desk stopped');
    await waitFor(async () => {
      const history = (await serve.admin('/apps/desk/history')).body as { by?: string }[];
      return history[0]?.by !== undefined;
    }, 'the stop recorded');
    await page.locator('tr[data-app="desk"] .app-name').click();
    const by = page.locator('#detail-body .history-by').first();
    expect((await by.innerText()).trim()).toBe('· by token APPVISOR_ADMIN_TOKEN via admin-ui');
  });
});
