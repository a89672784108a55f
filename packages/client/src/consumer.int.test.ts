// The consumer end to end: a real publish service and a real consume service sharing one
// embedded SQLite file (temp dir) and two s3proxy regions (a bucket of this file's own in
// each), both from their composition roots on port 0; the SDK's publisher writes, its
// consumer reads.
import { until as untilDefault } from './testing.ts';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Code, type MetadataStore, type QuireError } from '@quire/core';
import { createConsumeApp, createStores, loadConfig as loadConsumeConfig, type ConsumeApp, type Stores } from '@quire/consume-service';
import { createPublishApp, loadConfig as loadPublishConfig, type PublishApp } from '@quire/publish-service';
import { uniqueBucket } from '@quire/test-servers';
import { createConsumer, createPublisher, type Consumer, type ConsumerOptions, type Publisher, type UpdateEvent } from './index.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const { s3 } = inject('quireServers');
const s3Options = Object.fromEntries(
  s3.regions.map((r) => [r.name, { endpoint: r.endpoint, accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, forcePathStyle: true }]),
);
const [regionA, regionB] = s3.regions.map((r) => r.name) as [string, string];
const buckets = Object.fromEntries(s3.regions.map((r) => [r.name, uniqueBucket('client-' + r.name)]));
/** Direct S3 access, to plant and corrupt objects behind the services' backs. */
const admin = Object.fromEntries(
  s3.regions.map((r) => [
    r.name,
    new S3Client({ endpoint: r.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } }),
  ]),
);
const putObject = (region: string, key: string, body: Uint8Array) =>
  (admin[region] as S3Client).send(new PutObjectCommand({ Bucket: buckets[region], Key: key, Body: body }));

let dir: string;
let pubApp: PublishApp;
let consumeApp: ConsumeApp;
let pub: Publisher;
let stores: Stores;
let store: MetadataStore;
const consumers: Consumer[] = [];

function consumer(options: Partial<ConsumerOptions> & Pick<ConsumerOptions, 'identity'>): Consumer {
  const c = createConsumer({ endpoints: [consumeApp.grpcAddress], longPoll: { waitMs: 10_000 }, ...options });
  consumers.push(c);
  return c;
}

const json = <T>() => (bytes: Uint8Array): T => JSON.parse(new TextDecoder().decode(bytes)) as T;

/** Resolve when `fn()` is truthy; fail after `timeoutMs`. */
/**
 * Wait until the consume service's topic cache (refreshed from the store every
 * QUIRE_CHANGE_POLL_MS) hands `version` of `topic` to a consumer with `identity`.
 */
async function visible(topic: string, version: number, identity: Record<string, string> = {}): Promise<void> {
  const end = Date.now() + 5000;
  for (;;) {
    const r = await consumeApp.service.poll({ identity: { ...identity, instance: 'test-probe' }, subscriptions: [{ topic }], waitMs: 0 });
    if (r.updates[0]?.version.version === version) return;
    if (Date.now() > end) throw new Error(`consume service never offered ${topic} version ${version}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-client-e2e-'));
  const env = {
    QUIRE_DATA_DIR: dir,
    QUIRE_S3_REGIONS: JSON.stringify(s3.regions.map((r) => ({ ...r, bucket: buckets[r.name] }))),
    QUIRE_LOG_LEVEL: 'silent',
  };
  pubApp = await createPublishApp(loadPublishConfig({ ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' }));
  const consumeConfig = loadConsumeConfig({ ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0', QUIRE_FLEET_FLUSH_MS: '60000' });
  consumeApp = await createConsumeApp(consumeConfig);
  stores = await createStores(consumeConfig);
  store = stores.store;
  pub = createPublisher({ endpoint: pubApp.grpcAddress, actor: 'e2e', consumeEndpoint: consumeApp.grpcAddress });
});

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.close()));
  pub?.close();
  await consumeApp?.close();
  await pubApp?.close();
  await stores?.close();
  for (const c of Object.values(admin)) c.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const until = (fn: () => boolean, what: string, timeoutMs = 5000): Promise<void> => untilDefault(fn, what, timeoutMs);

describe('consumer end to end', () => {
  it('a long-polling consumer gets a new version promptly (publish → handler latency)', async () => {
    await pub.createTopic({ name: 'e2e.latency' });
    const v1 = await pub.publish('e2e.latency', { data: JSON.stringify({ n: 1 }), metadata: { n: '1' } });
    await visible('e2e.latency', v1.version);
    const c = consumer({ identity: { application: 'checkout', region: regionA } });
    const sub = c.subscribe('e2e.latency', { decode: json<{ n: number }>(), defaultValue: { n: 0 } });
    expect(sub.current()).toEqual({ n: 0 });
    await c.ready();
    expect(sub.current()).toEqual({ n: 1 });
    expect(sub.version()).toBe(v1.version);

    const latencies: number[] = [];
    for (let n = 2; n <= 4; n++) {
      let t0 = 0;
      const got = new Promise<UpdateEvent<{ n: number }>>((resolve) => sub.on('update', function once(e) {
        latencies.push(Date.now() - t0);
        sub.off('update', once);
        resolve(e);
      }));
      // Let the re-armed long-poll settle on the server first.
      await new Promise((r) => setTimeout(r, 100));
      t0 = Date.now();
      const v = await pub.publish('e2e.latency', { data: JSON.stringify({ n }), metadata: { n: String(n) } });
      const e = await got;
      expect(e).toMatchObject({ version: v.version, metadata: { n: String(n) }, value: { n } });
      expect(sub.current()).toEqual({ n });
    }
    console.log(`[client e2e] publish → update handler latency (ms): ${latencies.join(', ')}`);
    expect(Math.max(...latencies)).toBeLessThan(2000);
  });

  it('consumers with different identities get different versions when releases are scoped', async () => {
    await pub.createTopic({ name: 'e2e.scoped' });
    const global = await pub.publish('e2e.scoped', { data: 'global' });
    const canary = await pub.publish('e2e.scoped', { data: 'canary', scopes: [{ cluster: 'checkout-canary' }] });
    await visible('e2e.scoped', canary.version, { cluster: 'checkout-canary' });
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    const a = consumer({ identity: { application: 'checkout', cluster: 'checkout-canary' } });
    const b = consumer({ identity: { application: 'checkout', cluster: 'checkout-main' } });
    const sa = a.subscribe('e2e.scoped', { decode });
    const sb = b.subscribe('e2e.scoped', { decode });
    await Promise.all([a.ready(), b.ready()]);
    expect([sa.version(), sa.current()]).toEqual([canary.version, 'canary']);
    expect([sb.version(), sb.current()]).toEqual([global.version, 'global']);
  });

  it('a consumer 3 versions behind jumps straight to the newest', async () => {
    await pub.createTopic({ name: 'e2e.behind' });
    await visible('e2e.behind', (await pub.publish('e2e.behind', { data: 'v1' })).version);
    // Interval polling (no long-poll), so the three publishes land between two polls.
    const c = consumer({ identity: { application: 'checkout' }, pollIntervalMs: 1500, longPoll: undefined });
    const sub = c.subscribe('e2e.behind', { decode: (b) => new TextDecoder().decode(b) });
    await c.ready();
    expect(sub.current()).toBe('v1');
    const seen: number[] = [];
    sub.on('update', (e) => seen.push(e.version));
    await pub.publish('e2e.behind', { data: 'v2' });
    await pub.publish('e2e.behind', { data: 'v3' });
    const newest = await pub.publish('e2e.behind', { data: 'v4' });
    await until(() => sub.version() === newest.version, 'the newest version', 5000);
    expect(seen).toEqual([newest.version]);
    expect(sub.current()).toBe('v4');
  });

  it('downloads an S3-backed version from its own region, verifies it, and falls back to the next region', async () => {
    await pub.createTopic({ name: 'e2e.s3', inlineThresholdBytes: 1024 });
    const bytes = randomBytes(256 * 1024);
    const v = await pub.publish('e2e.s3', { data: bytes, contentType: 'application/octet-stream' });
    expect(v.pointer.kind).toBe('s3');
    await visible('e2e.s3', v.version);
    // Own region B: read from B.
    const b = consumer({ identity: { application: 'ml', region: regionB }, s3: s3Options });
    const sb = b.subscribe('e2e.s3');
    await b.ready();
    expect(sb.version()).toBe(v.version);
    expect(sha(sb.current())).toBe(v.sha256);
    const d = sb.descriptor();
    expect(d?.pointer.kind === 's3' ? d.pointer.locations.map((l) => l.region) : []).toEqual([regionB, regionA]);
    // Own region A unreachable: the bytes come from B.
    const a = consumer({
      identity: { application: 'ml', region: regionA },
      s3: { ...s3Options, [regionA]: { endpoint: 'http://127.0.0.1:1', accessKeyId: 'x', secretAccessKey: 'y', forcePathStyle: true } },
    });
    const sa = a.subscribe('e2e.s3');
    await a.ready();
    expect(sa.version()).toBe(v.version);
    expect(Buffer.from(sa.current()).equals(bytes)).toBe(true);

    // History API on the consumer.
    expect(Buffer.from(await b.download('e2e.s3', v.version)).equals(bytes)).toBe(true);
    expect(await b.getVersion('e2e.s3', v.version)).toMatchObject({ version: v.version, sha256: v.sha256 });
    const page = await b.listVersions('e2e.s3');
    expect(page.items.map((x) => x.version)).toEqual([v.version]);
    expect((await b.versionAt('e2e.s3', Date.now())).version).toBe(v.version);
    const before = await b.versionAt('e2e.s3', v.createdAt - 1).then(
      () => undefined,
      (e: QuireError) => e.code,
    );
    expect(before).toBe(Code.NOT_FOUND);
    // …and on the publisher (through the consume endpoint).
    expect((await pub.getVersion('e2e.s3', v.version)).sha256).toBe(v.sha256);
  });

  it('refuses a corrupt S3 copy (SHA-256) and reads the next region; all copies corrupt keeps the old value', async () => {
    await pub.createTopic({ name: 'e2e.corrupt', inlineThresholdBytes: 1024 });
    // A payload registered from objects we put in both regions ourselves.
    const first = randomBytes(8 * 1024);
    await putObject(regionA, 'planted/e2e-corrupt-1', first);
    await putObject(regionB, 'planted/e2e-corrupt-1', first);
    const v1 = await pub.register('e2e.corrupt', { key: 'planted/e2e-corrupt-1', regions: [regionA, regionB], metadata: { from: 'register' } });
    expect(v1).toMatchObject({ sha256: sha(first), size: first.byteLength, metadata: { from: 'register' } });
    await visible('e2e.corrupt', v1.version);
    // Region B's copy goes bad after the commit.
    await putObject(regionB, 'planted/e2e-corrupt-1', randomBytes(first.byteLength));
    const c = consumer({ identity: { application: 'ml', region: regionB }, s3: s3Options });
    const sub = c.subscribe('e2e.corrupt');
    const errors: QuireError[] = [];
    sub.on('error', (e) => errors.push(e));
    await c.ready();
    expect(sub.version()).toBe(v1.version);
    expect(Buffer.from(sub.current()).equals(first)).toBe(true);
    expect(errors).toEqual([]);

    // Both copies of the next version bad: DATA_LOSS, the old value stays. (Released to
    // nobody until both copies are corrupted, so the consumer cannot fetch it before.)
    const v2 = await pub.publish('e2e.corrupt', { data: randomBytes(4096), scopes: [{ cluster: 'nobody' }] });
    if (v2.pointer.kind !== 's3') throw new Error('expected an S3 version');
    for (const l of v2.pointer.locations) await putObject(l.region, l.key, randomBytes(4096));
    await pub.release('e2e.corrupt', v2.version, [{}]);
    await until(() => errors.length > 0, 'the checksum error');
    expect(errors[0]?.code).toBe(Code.DATA_LOSS);
    expect(errors[0]?.message).toMatch(/SHA-256/);
    expect(sub.version()).toBe(v1.version);
    expect(Buffer.from(sub.current()).equals(first)).toBe(true);
  });

  it('a decode failure keeps the old value and is reported on the next poll; the next good version applies', async () => {
    await pub.createTopic({ name: 'e2e.decode' });
    const good = await pub.publish('e2e.decode', { data: '{"ok":1}' });
    await visible('e2e.decode', good.version);
    const c = consumer({ identity: { application: 'checkout', instance: 'decode-1' } });
    const sub = c.subscribe('e2e.decode', { decode: json<{ ok: number }>() });
    const errors: QuireError[] = [];
    sub.on('error', (e) => errors.push(e));
    await c.ready();
    expect(sub.current()).toEqual({ ok: 1 });

    const bad = await pub.publish('e2e.decode', { data: 'not json' });
    await until(() => errors.length > 0, 'the decode error');
    expect(errors[0]?.message).toMatch(/decode failed/);
    expect(sub.current()).toEqual({ ok: 1 });
    expect(sub.version()).toBe(good.version);

    // The re-armed poll carries applied = good, failed = bad.
    let report: { version: number; failedVersion?: number; error?: string } | undefined;
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      await consumeApp.service.flushFleetReports();
      report = (await store.listFleetReports('e2e.decode')).find((r) => r.instance === 'decode-1');
      if (report?.failedVersion === bad.version) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(report).toMatchObject({ version: good.version, failedVersion: bad.version });
    expect(report?.error).toMatch(/decode failed/);

    const fixed = await pub.publish('e2e.decode', { data: '{"ok":3}' });
    await until(() => sub.version() === fixed.version, 'the fixed version');
    expect(sub.current()).toEqual({ ok: 3 });
  });

  it('a fresh consumer whose newest version fails falls back to the previous one', async () => {
    await pub.createTopic({ name: 'e2e.fallback' });
    const good = await pub.publish('e2e.fallback', { data: '{"ok":true}' });
    const bad = await pub.publish('e2e.fallback', { data: '{oops' });
    await visible('e2e.fallback', bad.version);
    const c = consumer({ identity: { application: 'checkout' } });
    const sub = c.subscribe('e2e.fallback', { decode: json<{ ok: boolean }>(), defaultValue: { ok: false } });
    const updates: UpdateEvent<{ ok: boolean }>[] = [];
    sub.on('update', (e) => updates.push(e));
    sub.on('error', () => {});
    await c.ready();
    expect(sub.version()).toBe(good.version);
    expect(sub.current()).toEqual({ ok: true });
    expect(updates.map((u) => [u.version, u.via])).toEqual([[good.version, 'fallback']]);
    expect(bad.version).toBeGreaterThan(good.version);
  });

  it('a topic subscribed while a long-poll is held is fetched at once, in the same batched poll', async () => {
    await pub.createTopic({ name: 'e2e.late-a' });
    await pub.createTopic({ name: 'e2e.late-b' });
    const a = await pub.publish('e2e.late-a', { data: 'a' });
    const b = await pub.publish('e2e.late-b', { data: 'b' });
    await visible('e2e.late-a', a.version);
    await visible('e2e.late-b', b.version);
    const c = consumer({ identity: { application: 'checkout' }, longPoll: { waitMs: 30_000 } });
    const sa = c.subscribe('e2e.late-a');
    await c.ready();
    expect(sa.version()).toBe(a.version);
    await new Promise((r) => setTimeout(r, 100)); // the held poll is on the server now
    const t0 = Date.now();
    const sb = c.subscribe('e2e.late-b');
    await until(() => sb.version() === b.version, 'the late subscription', 2000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(sa.version()).toBe(a.version);
  });

  it('the pause between polls ends at once for a new subscription and for close()', async () => {
    await pub.createTopic({ name: 'e2e.pause-a' });
    await pub.createTopic({ name: 'e2e.pause-b' });
    const a = await pub.publish('e2e.pause-a', { data: 'a' });
    const b = await pub.publish('e2e.pause-b', { data: 'b' });
    await visible('e2e.pause-a', a.version);
    await visible('e2e.pause-b', b.version);
    // Polling every 10 minutes: after the first poll the consumer is in a pause no test outlives.
    const c = createConsumer({ endpoints: [consumeApp.grpcAddress], identity: { application: 'checkout' }, pollIntervalMs: 600_000 });
    const sa = c.subscribe('e2e.pause-a');
    await c.ready();
    expect(sa.version()).toBe(a.version);
    const sb = c.subscribe('e2e.pause-b');
    await until(() => sb.version() === b.version, 'the subscription made during the pause');
    // Back in a 10-minute pause: close() ends it (the test times out otherwise).
    await new Promise((r) => setTimeout(r, 50));
    await c.close();
    expect([sa.version(), sb.version()]).toEqual([a.version, b.version]);
  });

  it('round-robins over endpoints, retrying an unreachable one on the next', async () => {
    await pub.createTopic({ name: 'e2e.rr' });
    const v = await pub.publish('e2e.rr', { data: 'rr' });
    await visible('e2e.rr', v.version);
    const c = consumer({ endpoints: ['127.0.0.1:1', consumeApp.grpcAddress], identity: { application: 'checkout' }, retry: { baseDelayMs: 20 } });
    const sub = c.subscribe('e2e.rr');
    await c.ready();
    expect(sub.version()).toBe(v.version);
  });
});
