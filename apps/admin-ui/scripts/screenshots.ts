/**
 * Screenshots of the main pages for the README: `pnpm --filter @quire/admin-ui screenshots`.
 * Starts Quire on the embedded store in a temporary directory (services as processes, the
 * UI server), seeds a few topics, a pin, a rollout and a small fleet of SDK consumers (one
 * fails to apply), and saves docs/screenshots/*.png from Debian's Chromium.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createConsumer, type Consumer } from '@quire/client';
import { launchChromium } from '../src/testing/browser.ts';
import { startStack } from '../src/testing/stack.ts';
import { UI_ROOT } from '../src/server/index.ts';

const OUT = resolve(UI_ROOT, '../../docs/screenshots');
mkdirSync(OUT, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'quire-shots-'));
const stack = await startStack({ QUIRE_METADATA_STORE: 'embedded', QUIRE_DATA_DIR: dir, QUIRE_LOG_LEVEL: 'warn' });
const api = stack.publish.httpUrl;
const consumers: Consumer[] = [];

async function call(method: string, path: string, body?: unknown, actor = 'alice'): Promise<unknown> {
  const res = await fetch(`${api}${path}`, {
    method,
    headers: { 'x-quire-actor': actor, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as unknown;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

try {
  const plan = {
    stages: [
      { name: 'canary', scope: { cluster: 'checkout-canary' }, bakeMs: 0 },
      { name: 'eu', scope: { region: 'eu-west-1' }, bakeMs: 600_000 },
      { name: 'global', scope: {}, bakeMs: 1_800_000 },
    ],
  };
  await call('POST', '/v1/topics', { name: 'devices.supported', owner: 'devices-team', description: 'Devices the apps support, by platform', rolloutPlan: plan });
  await call('POST', '/v1/topics', { name: 'payments.ab-config', owner: 'payments', description: 'A/B test allocation for checkout' });
  await call('POST', '/v1/topics', { name: 'search.ranking-model', owner: 'search-ml', description: 'Nightly ranking weights' });
  await call('POST', '/v1/topics', { name: 'geo.country-rules', owner: 'geo', description: 'Per-country feature rules' });
  const devices = [
    { tv: ['samsung', 'lg'], phone: ['ios', 'android'] },
    { tv: ['samsung', 'lg', 'sony'], phone: ['ios', 'android'] },
    { tv: ['samsung', 'lg', 'sony'], phone: ['ios', 'android'], watch: ['wearos'] },
  ];
  await call('POST', '/v1/topics/devices.supported/versions', { data: JSON.stringify(devices[0]), contentType: 'application/json', metadata: { source: 'nightly', rows: '4' } }, 'nightly-job');
  await call('POST', '/v1/topics/devices.supported/versions', { data: JSON.stringify(devices[1]), contentType: 'application/json', metadata: { source: 'nightly', rows: '5' } }, 'nightly-job');
  for (let i = 1; i <= 3; i++) await call('POST', '/v1/topics/payments.ab-config/versions', { data: JSON.stringify({ experiment: 'one-click', share: i * 10 }), contentType: 'application/json', metadata: { ticket: `PAY-${100 + i}` } }, 'payments-ci');
  await call('POST', '/v1/topics/payments.ab-config/pins', { version: 2, reason: 'share 30% overloads the fraud check' }, 'bob');
  await call('POST', '/v1/topics/search.ranking-model/versions', { data: 'feature,weight\nclicks,0.41\ndwell,0.33\nfreshness,0.26\n', contentType: 'text/csv' }, 'search-trainer');
  await call('POST', '/v1/topics/geo.country-rules/versions', { data: '{"de":{"cod":false}}', contentType: 'application/json' }, 'geo-admin');

  // A fleet: 6 checkout instances in three clusters; one cannot decode v3.
  const fleet = [
    { cluster: 'checkout-canary', region: 'eu-west-1', instance: 'checkout-canary-1' },
    { cluster: 'checkout-canary', region: 'us-east-1', instance: 'checkout-canary-2' },
    { cluster: 'checkout-main', region: 'eu-west-1', instance: 'checkout-eu-1' },
    { cluster: 'checkout-main', region: 'eu-west-1', instance: 'checkout-eu-2' },
    { cluster: 'checkout-main', region: 'us-east-1', instance: 'checkout-us-1' },
    { cluster: 'checkout-main', region: 'us-east-1', instance: 'checkout-us-2' },
  ];
  for (const id of fleet) {
    const c = createConsumer({ endpoints: [stack.consume.grpcAddress], identity: { application: 'checkout', ...id }, longPoll: { waitMs: 5000 } });
    c.subscribe('devices.supported', {
      decode: (b) => {
        const v = JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
        if (id.instance === 'checkout-canary-2' && 'watch' in v) throw new Error('unknown platform "watch" in devices list');
        return v;
      },
    });
    c.start();
    consumers.push(c);
  }
  await Promise.all(consumers.map((c) => c.ready()));
  await sleep(1500);
  await call('POST', '/v1/topics/devices.supported/versions', { data: JSON.stringify(devices[2]), contentType: 'application/json', metadata: { source: 'nightly', rows: '6' }, useRolloutPlan: true }, 'nightly-job');
  await sleep(2500);
  const runId = ((await call('GET', '/v1/topics/devices.supported/rollouts?active=true')) as { runs: { runId: string }[] }).runs[0]!.runId;

  const { context, close } = await launchChromium({ width: 1366, height: 860 });
  try {
    const page = await context.newPage();
    await page.addInitScript(() => localStorage.setItem('quire.actor', 'alice'));
    const shot = async (path: string, file: string, waitFor: string, fullPage = false) => {
      await page.goto(`${stack.ui.url}${path}`);
      await page.locator(waitFor).first().waitFor({ timeout: 15_000 });
      await sleep(600);
      await page.screenshot({ path: join(OUT, file), fullPage });
      process.stdout.write(`saved docs/screenshots/${file}\n`);
    };
    await shot('/', 'topics.png', 'table.table');
    await shot('/topics/devices.supported', 'topic-versions.png', '[data-testid="version-row-3"]');
    await shot('/topics/payments.ab-config', 'pinned.png', '[data-testid="pin-banner"]');
    await shot('/topics/devices.supported/diff?from=1&to=3', 'diff.png', '[data-testid="diff-summary"]');
    // The fleet page stays open while the rollout advances to its second stage: the chart moves.
    await shot('/topics/devices.supported/fleet', 'fleet.png', '[data-testid="fleet-total"]');
    await sleep(5000);
    await call('POST', `/v1/topics/devices.supported/rollouts/${runId}/advance`, { reason: 'canary healthy' }, 'alice');
    await sleep(9000);
    await page.screenshot({ path: join(OUT, 'fleet.png'), fullPage: true });
    await shot('/topics/devices.supported/rollouts', 'rollout.png', '.run');
    await shot('/topics/devices.supported/publish', 'publish.png', 'form.publish-form');
    await shot('/topics/devices.supported/versions/3', 'version.png', '[data-testid="preview"]');
    await shot('/audit', 'audit.png', 'table.audit');
  } finally {
    await close();
  }
} finally {
  await Promise.all(consumers.map((c) => c.close()));
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
