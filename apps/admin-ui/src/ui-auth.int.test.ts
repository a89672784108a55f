// The admin UI with access control on (QUIRE_AUTH=on), in Debian's Chromium against the
// publish and consume services as processes on Cassandra + two S3 regions: without a token
// the UI says the server refused and offers the token box; a viewer token reads but its pin
// is refused with the server's 403 message on the form; a sign-in link (/#token=…, as the
// quickstart prints it) stores the admin token, leaves the address bar clean, and pins.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Page } from 'playwright-core';
import { bootstrapAdminToken, createStores, loadConfig } from '@quire/publish-service';
import { quireTestStores } from '@quire/test-servers';
import { launchChromium, type LaunchedBrowser } from './testing/browser.ts';
import { startStack, type Stack } from './testing/stack.ts';

const testStores = quireTestStores(inject('quireServers'), 'adminuiauth');
const env = {
  ...testStores.env,
  QUIRE_LOG_LEVEL: 'warn',
  QUIRE_AUTH: 'on',
  QUIRE_AUTH_CACHE_MS: '0',
};
const TOPIC = 'auth.ui';
const WAIT = { timeout: 30_000 };

let stack: Stack;
let chromium: LaunchedBrowser;
let page: Page;
let admin: string;
let viewer: string;

async function rest(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.publish.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin}`, 'x-quire-actor': 'setup', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  stack = await startStack(env);
  // The first admin token goes straight into the store (as the quickstart does).
  const stores = await createStores(loadConfig(env));
  try {
    admin = (await bootstrapAdminToken(stores.store, 'ui-test-admin', 'ui-test')) as string;
  } finally {
    await stores.close();
  }
  expect(admin).toBeTruthy();
  const made = await rest('POST', '/v1/tokens', { name: 'ui-viewer', role: 'viewer' });
  expect(made.status).toBe(201);
  viewer = made.body.tokenString as string;
  expect((await rest('POST', '/v1/topics', { name: TOPIC, owner: 'ops' })).status).toBe(201);
  for (const data of ['one', 'two']) expect((await rest('POST', `/v1/topics/${TOPIC}/versions`, { data })).status).toBe(201);
  chromium = await launchChromium();
  page = await chromium.context.newPage();
});

afterAll(async () => {
  await chromium?.close();
  if (stack !== undefined) expect(await stack.stop()).toEqual([0, 0]);
});

describe('admin UI with access control on', () => {
  it('without a token: says the server refused and offers the token box', async () => {
    await page.goto(stack.ui.url);
    const banner = page.getByRole('alert').filter({ hasText: 'The server refused a request (401)' });
    await banner.waitFor(WAIT);
    await page.getByRole('alert').filter({ hasText: 'Could not load the topics' }).waitFor(WAIT);
    await banner.getByRole('button', { name: 'Enter an API token' }).click();
    const dialog = page.getByRole('dialog', { name: 'Who you are' });
    await dialog.getByLabel('API token', { exact: true }).fill(viewer);
    await dialog.getByLabel('Your name (recorded in the audit log)', { exact: true }).fill('vera');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('link', { name: TOPIC }).waitFor(WAIT);
    expect(await page.getByRole('alert').count()).toBe(0);
  });

  it("a viewer's pin is refused with the server's message on the form", async () => {
    await page.goto(`${stack.ui.url}/topics/${TOPIC}`);
    await page.getByRole('button', { name: 'Pin v1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Pin v1' });
    await dialog.getByLabel('Reason', { exact: true }).fill('try');
    await dialog.getByRole('button', { name: 'Pin v1' }).click();
    const refused = dialog.getByRole('alert').filter({ hasText: 'The server refused' });
    await refused.waitFor(WAIT);
    expect(await refused.textContent()).toMatch(/viewer|not allowed|permission|may not/i);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await page.getByTestId('pin-banner').count()).toBe(0);
  });

  it('a sign-in link stores the admin token, leaves the address bar clean, and the pin goes through', async () => {
    await page.goto(`${stack.ui.url}/#token=${encodeURIComponent(admin)}`);
    await page.getByRole('link', { name: TOPIC }).waitFor(WAIT);
    expect(page.url()).not.toContain(admin);
    expect(await page.evaluate(() => localStorage.getItem('quire.token'))).toBe(admin);
    await page.getByRole('link', { name: TOPIC }).click();
    await page.getByRole('button', { name: 'Pin v1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Pin v1' });
    await dialog.getByLabel('Reason', { exact: true }).fill('hold v1');
    await dialog.getByRole('button', { name: 'Pin v1' }).click();
    await page.getByTestId('pin-banner').waitFor(WAIT);
    expect(await page.getByTestId('pin-banner').textContent()).toContain('Pinned to v1 for the whole fleet');
  });
});
