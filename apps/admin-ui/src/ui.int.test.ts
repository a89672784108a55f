// The admin UI in a real browser (Debian's Chromium, driven by playwright-core) against the
// real services: publish and consume as their own processes on Cassandra (own keyspace) and
// two s3proxy regions (own buckets), the UI server in front, SDK consumers in this process.
// An operator creates a topic, publishes twice, diffs, pins and unpins while a consumer
// follows, runs a two-stage rollout and advances it while the fleet chart moves, and finds
// every action in the audit log.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Page } from 'playwright-core';
import { createConsumer, type Consumer, type Subscription } from '@quire/client';
import { quireTestStores } from '@quire/test-servers';
import { launchChromium, type LaunchedBrowser } from './testing/browser.ts';
import { startStack, type Stack } from './testing/stack.ts';

const testStores = quireTestStores(inject('quireServers'), 'adminui');
const env = {
  ...testStores.env,
  QUIRE_LOG_LEVEL: 'warn',
};
const TOPIC = 'ui.devices';
const WAIT = { timeout: 30_000 };

let stack: Stack;
let chromium: LaunchedBrowser;
let page: Page;
const consumers: Consumer[] = [];

beforeAll(async () => {
  stack = await startStack(env);
  chromium = await launchChromium();
  page = await chromium.context.newPage();
  await page.addInitScript(() => localStorage.setItem('quire.actor', 'ui-tester'));
});

afterAll(async () => {
  for (const c of consumers) await c.close();
  await chromium?.close();
  if (stack !== undefined) expect(await stack.stop()).toEqual([0, 0]);
});

function consumer(cluster: string): Subscription<string> {
  const c = createConsumer({
    endpoints: [stack.consume.grpcAddress],
    identity: { application: 'checkout', cluster, instance: `checkout-${cluster}-1` },
    longPoll: { waitMs: 5_000 },
  });
  consumers.push(c);
  const sub = c.subscribe(TOPIC, { decode: (b) => new TextDecoder().decode(b), defaultValue: '' });
  c.start();
  return sub;
}

async function until(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function publishFromUi(content: string, target: 'global' | 'plan', expectVersion: number): Promise<void> {
  await page.getByRole('link', { name: 'Publish', exact: true }).first().click();
  await page.getByLabel('Content', { exact: true }).fill(content);
  await page.getByLabel('Metadata key 1', { exact: true }).fill('source');
  await page.getByLabel('Metadata value 1', { exact: true }).fill('ui-test');
  await page.getByRole('radio', { name: target === 'global' ? 'Everyone (global)' : /^The topic's rollout plan/ }).check();
  await page.locator('form.publish-form').getByRole('button', { name: 'Publish' }).click();
  await page.getByRole('status').filter({ hasText: `Published v${expectVersion}` }).waitFor(WAIT);
}

describe('admin UI in Chromium against the real services', () => {
  let main: Subscription<string>;
  let canary: Subscription<string>;

  it('shows a server error as a readable message, not a blank page', async () => {
    await page.goto(`${stack.ui.url}/topics/no.such-topic`);
    const alert = page.getByRole('alert').filter({ hasText: 'Could not load no.such-topic' });
    await alert.waitFor(WAIT);
    expect(await alert.textContent()).toMatch(/no\.such-topic.*not found/i);
  });

  it('creates a topic; a refused name is shown on the field, readable', async () => {
    await page.goto(stack.ui.url);
    await page.getByRole('heading', { name: 'Topics' }).waitFor(WAIT);
    await page.getByRole('button', { name: '+ New topic' }).click();
    const dialog = page.getByRole('dialog', { name: 'New topic' });
    await dialog.getByLabel('Name', { exact: true }).fill('Not A Valid Name!');
    await dialog.getByRole('button', { name: 'Create topic' }).click();
    const fieldError = page.locator('#nt-name-error');
    await fieldError.waitFor(WAIT);
    expect(await fieldError.textContent()).toMatch(/name/i);
    expect(await dialog.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')).toBe('true');

    await dialog.getByLabel('Name', { exact: true }).fill(TOPIC);
    await dialog.getByLabel('Owner', { exact: true }).fill('devices-team');
    await dialog.getByLabel('Description', { exact: true }).fill('Devices the apps support');
    await dialog.getByRole('button', { name: 'Create topic' }).click();
    await page.waitForURL(`**/topics/${TOPIC}`);
    await page.getByRole('heading', { name: TOPIC }).waitFor(WAIT);
  });

  it('sets a two-stage rollout plan in the settings', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('button', { name: '+ Add stage' }).click();
    await page.getByRole('button', { name: '+ Add stage' }).click();
    await page.getByLabel('Stage 1 name', { exact: true }).fill('canary');
    await page.getByLabel('Stage 1 scope', { exact: true }).fill('cluster=canary');
    await page.getByLabel('Stage 2 name', { exact: true }).fill('everyone');
    await page.getByLabel('Stage 2 scope', { exact: true }).fill('global');
    await page.getByLabel('Stage 2 bake time', { exact: true }).fill('10m');
    await page.getByLabel('JSON Schema for JSON payloads (optional)', { exact: true }).fill('{"type": "object", "required": ["tv"]}');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved (revision 2)' }).waitFor(WAIT);
  });

  it('shows a payload the topic refuses (JSON Schema) on the content field', async () => {
    await page.getByRole('link', { name: 'Publish', exact: true }).first().click();
    await page.getByLabel('Content', { exact: true }).fill('{"phone": ["ios"]}');
    await page.getByRole('radio', { name: 'Everyone (global)' }).check();
    await page.locator('form.publish-form').getByRole('button', { name: 'Publish' }).click();
    const error = page.locator('#pub-data-error');
    await error.waitFor(WAIT);
    expect(await error.textContent()).toMatch(/^data: .*tv/);
    expect(await page.getByLabel('Content', { exact: true }).getAttribute('aria-invalid')).toBe('true');
  });

  it('publishes twice from the UI and shows both versions', async () => {
    await publishFromUi('{"tv": ["samsung"], "phone": ["ios"]}', 'global', 1);
    await publishFromUi('{"tv": ["samsung", "lg"], "phone": ["ios"]}', 'global', 2);
    await page.getByRole('link', { name: 'Versions' }).click();
    await page.getByTestId('version-row-2').waitFor(WAIT);
    await page.getByTestId('version-row-1').waitFor(WAIT);
    expect(await page.getByTestId('version-row-2').textContent()).toContain('latest');
    expect(await page.getByTestId('version-row-1').textContent()).toContain('source=ui-test');
  });

  it('downloads a version, as a plain link and, with an API token set, through an authorised fetch', async () => {
    const read = async (): Promise<string> => {
      const [download] = await Promise.all([page.waitForEvent('download', WAIT), page.getByRole('link', { name: 'Download v1' }).click()]);
      expect(download.suggestedFilename()).toBe(`${TOPIC}-v1`);
      const chunks: Buffer[] = [];
      for await (const c of await download.createReadStream()) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    };
    expect(await read()).toBe('{"tv": ["samsung"], "phone": ["ios"]}');
    await page.evaluate(() => localStorage.setItem('quire.token', 'any-token'));
    await page.reload();
    await page.getByTestId('version-row-1').waitFor(WAIT);
    expect(await read()).toBe('{"tv": ["samsung"], "phone": ["ios"]}');
    await page.evaluate(() => localStorage.removeItem('quire.token'));
    await page.reload();
    await page.getByTestId('version-row-1').waitFor(WAIT);
  });

  it('diffs the two versions (JSON compared canonically)', async () => {
    await page.getByLabel('Compare v1', { exact: true }).check();
    await page.getByLabel('Compare v2', { exact: true }).check();
    await page.getByRole('button', { name: 'Diff v1 → v2' }).click();
    await page.waitForURL(/\/diff\?from=1&to=2$/);
    const summary = page.getByTestId('diff-summary');
    await summary.waitFor(WAIT);
    expect(await summary.textContent()).toContain('+2 −1 lines · compared as JSON');
    expect(await page.locator('.diff-add').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('"lg"')]));
  });

  it('pins v1 and a consumer moves to it; unpinning sends it back to v2', async () => {
    main = consumer('main');
    canary = consumer('canary');
    await until('both consumers on v2', () => main.version() === 2 && canary.version() === 2);

    await page.goto(`${stack.ui.url}/topics/${TOPIC}`);
    await page.getByRole('button', { name: 'Pin v1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Pin v1' });
    expect(await dialog.textContent()).toContain(`Every consumer of ${TOPIC} will get v1 within a poll, instead of the latest v2`);
    await dialog.getByLabel('Reason', { exact: true }).fill('bad rows in v2');
    await dialog.getByRole('button', { name: 'Pin v1' }).click();
    const banner = page.getByTestId('pin-banner');
    await banner.waitFor(WAIT);
    expect(await banner.textContent()).toContain('Pinned to v1 for the whole fleet');
    expect(await banner.textContent()).toContain('bad rows in v2');
    await until('the consumer to move to the pinned v1', () => main.version() === 1);
    expect(main.current()).toContain('"samsung"]');

    await banner.getByRole('button', { name: 'Unpin' }).click();
    const unpin = page.getByRole('dialog', { name: 'Unpin v1' });
    await unpin.getByLabel('Reason', { exact: true }).fill('v2 fixed upstream');
    await unpin.getByRole('button', { name: 'Unpin' }).click();
    await banner.waitFor({ state: 'detached', ...WAIT });
    await until('the consumer to return to v2', () => main.version() === 2);
  });

  it('runs a two-stage rollout, advances it, and the fleet chart follows the consumers', async () => {
    await publishFromUi('{"tv": ["samsung", "lg", "sony"], "phone": ["ios"]}', 'plan', 3);
    await until('the canary consumer to get v3 (stage 1)', () => canary.version() === 3);
    expect(main.version()).toBe(2);

    await page.getByRole('link', { name: 'Rollouts' }).click();
    const run = page.locator('article.run').first();
    await run.waitFor(WAIT);
    expect(await run.locator('[data-state="current"]').textContent()).toContain('canary');
    const next = run.locator('[data-state="next"]');
    expect(await next.textContent()).toMatch(/everyone.*in (9m|10m) \d\ds/);

    // A second tab watches the fleet while the first one advances the rollout.
    const fleetPage = await chromium.context.newPage();
    await fleetPage.goto(`${stack.ui.url}/topics/${TOPIC}/fleet`);
    await fleetPage.getByTestId('fleet-version-3').filter({ hasText: '50%' }).waitFor(WAIT);
    await fleetPage.getByTestId('fleet-version-2').filter({ hasText: '50%' }).waitFor(WAIT);
    expect(await fleetPage.getByTestId('fleet-total').textContent()).toBe('2');

    await run.getByRole('button', { name: 'Advance now' }).click();
    const dialog = page.getByRole('dialog', { name: 'Advance the rollout of v3' });
    expect(await dialog.textContent()).toContain('Stage everyone (global) is released now');
    await dialog.getByLabel('Reason (optional)', { exact: true }).fill('canary looks healthy');
    await dialog.getByRole('button', { name: 'Advance now' }).click();
    await until('the main consumer to get v3 (stage 2)', () => main.version() === 3);

    await fleetPage.getByTestId('fleet-version-3').filter({ hasText: '100%' }).waitFor(WAIT);
    await fleetPage.getByTestId('fleet-version-2').waitFor({ state: 'detached', ...WAIT });
    // The live chart kept both series: v2 shrinking to nothing while v3 took the fleet.
    const legend = await fleetPage.locator('[data-testid="fleet-chart"] .recharts-legend-item-text').allTextContents();
    expect(legend).toEqual(['v2', 'v3']);
    expect(await fleetPage.getByTestId('fleet-scope-everyone (global)').textContent()).toContain('v3 100%');
    await fleetPage.close();

    await page.reload();
    await run.locator('.badge', { hasText: 'completed' }).waitFor(WAIT);
  });

  it('rolls back in one click to the last version fully rolled out, and the consumers follow', async () => {
    await page.goto(`${stack.ui.url}/topics/${TOPIC}`);
    await page.getByRole('button', { name: '↶ Roll back' }).click();
    const dialog = page.getByRole('dialog', { name: 'Roll back the whole fleet' });
    expect(await dialog.textContent()).toContain(`Every consumer of ${TOPIC} now running v3 will get v2 within a poll`);
    await dialog.getByLabel('Reason', { exact: true }).fill('sony rows are wrong');
    await dialog.getByRole('button', { name: 'Roll back to v2' }).click();
    const banner = page.getByTestId('pin-banner');
    await banner.waitFor(WAIT);
    expect(await banner.textContent()).toContain('Pinned to v2 for the whole fleet');
    await until('both consumers back on v2', () => main.version() === 2 && canary.version() === 2);
  });

  it('uploads a 6 MiB file through the UI server: streamed, stored in both S3 regions', async () => {
    const res = await fetch(`${stack.publish.httpUrl}/v1/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ui.files' }) });
    expect(res.status).toBe(201);
    await page.goto(`${stack.ui.url}/topics/ui.files/publish`);
    await page.getByRole('radio', { name: 'Upload a file' }).check();
    const bytes = Buffer.alloc(6 * 1024 * 1024, 'quire,');
    await page.getByLabel('File', { exact: true }).setInputFiles({ name: 'table.csv', mimeType: 'text/csv', buffer: bytes });
    expect(await page.locator('form.publish-form').textContent()).toContain('table.csv, 6.0 MiB — streamed to the service');
    await page.locator('form.publish-form').getByRole('button', { name: 'Publish' }).click();
    await page.getByRole('status').filter({ hasText: 'Published v1' }).waitFor(WAIT);
    await page.goto(`${stack.ui.url}/topics/ui.files`);
    const row = page.getByTestId('version-row-1');
    await row.waitFor(WAIT);
    const text = await row.textContent();
    expect(text).toContain('6.0 MiB');
    expect(text).toContain('text/csv');
    expect(text).toMatch(/S3 · region-a, region-b/);
    const download = await fetch(`${stack.ui.url}/api/v1/topics/ui.files/versions/1/data`);
    expect(Buffer.from(await download.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('finds each action in the audit log, filterable by topic, actor and action', async () => {
    await page.goto(`${stack.ui.url}/audit?topic=${TOPIC}`);
    await page.locator('table.audit').waitFor(WAIT);
    const actions = await page.locator('table.audit tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    for (const a of ['topic.create', 'topic.update', 'publish', 'pin', 'unpin', 'rollout.start', 'rollout.advance', 'rollback']) expect(actions).toContain(a);
    expect(actions.filter((a) => a === 'publish')).toHaveLength(3);

    await page.getByLabel('Action', { exact: true }).fill('pin');
    await page.getByLabel('Actor', { exact: true }).fill('ui-tester');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/action=pin/);
    // The filtered answer replaces the table (no stale rows: a new query shows a spinner first).
    await page.waitForFunction(() => document.querySelectorAll('table.audit tbody tr').length > 0 && [...document.querySelectorAll('table.audit tbody tr')].every((r) => r.getAttribute('data-action') === 'pin'), undefined, WAIT);
    const rows = page.locator('table.audit tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('bad rows in v2');
  });
});
