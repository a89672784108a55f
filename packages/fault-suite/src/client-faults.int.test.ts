// Client-side scenarios: fleets of SDK consumers (@quire/client) against real service
// processes, the shared Cassandra (own keyspace) and s3proxy:
//
// 1. The only consume service killed while 20 consumers long-poll: each goes to the S3
//    fallback snapshot (and gets the version published meanwhile), then back to the service.
// 2. Two consume replicas, one killed: 20 consumers go on with the other, no failed apply.
// 3. S3 region A down (an s3proxy of the test's own, stopped): region-A consumers get a
//    new version from region B; the consume service still offers it (the check looks at
//    the other regions when the consumer's own cannot be reached).
// 4. A corrupted object in the consumer's region: rejected, the other region used.
// 5. A consumer restarted while the service and S3 are down: starts from its disk cache.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createConsumer, createPublisher, type Consumer, type ConsumerOptions, type Publisher, type RegionFailure } from '@quire/client';
import { dropKeyspace, freePort, s3proxyInstance, startQuireProcess, uniqueBucket, uniqueKeyspace, type QuireProcess, type S3ProxyInstance } from '@quire/test-servers';
import { fault, serviceEnv, until, type Deployment } from './harness.ts';

const { cassandra, s3 } = inject('quireServers');
const [regionA, regionB] = s3.regions.map((r) => r.name) as [string, string];
const deployment: Deployment = {
  cassandra,
  keyspace: uniqueKeyspace('fault_client'),
  replicationFactor: 1,
  regions: s3.regions.map((r) => ({ ...r, bucket: uniqueBucket(`fault-cl-${r.name}`) })),
};
const s3Of = (d: Deployment): NonNullable<ConsumerOptions['s3']> =>
  Object.fromEntries(d.regions.map((r) => [r.name, { endpoint: r.endpoint, accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, bucket: r.bucket }]));

const procs: QuireProcess[] = [];
/** Keyspaces made on the shared node, dropped at the end. */
const keyspaces: string[] = [deployment.keyspace];
const consumers: Consumer[] = [];
const publishers: Publisher[] = [];
let dir: string;
let pub: Publisher;
let publishProc: QuireProcess;

async function start(app: 'publish-service' | 'consume-service', d: Deployment, extra: Record<string, string> = {}): Promise<QuireProcess> {
  const p = await startQuireProcess(app, serviceEnv(d, { QUIRE_SCHEDULER_TICK_MS: '100', QUIRE_LEASE_TTL_MS: '3000', ...extra }));
  procs.push(p);
  return p;
}

function consumer(d: Deployment, options: Partial<ConsumerOptions> & Pick<ConsumerOptions, 'endpoints' | 'identity'>): Consumer {
  const c = createConsumer({
    longPoll: { waitMs: 5000 },
    s3: s3Of(d),
    metrics: true,
    healthCheck: { intervalMs: 300 },
    reconnect: { baseMs: 50, maxMs: 500 },
    rearmJitterMs: 200,
    fallback: { refreshMs: 300 },
    ...options,
  });
  c.on('error', () => {});
  consumers.push(c);
  return c;
}

async function metric(registry: Registry | undefined, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry?.getSingleMetric(name);
  if (m === undefined) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

const waitAll = (cond: () => boolean, what: string, timeoutMs = 60_000) => until(async () => (cond() ? true : undefined), what, timeoutMs, 25);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-fault-client-'));
  publishProc = await start('publish-service', deployment);
  pub = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'fault-suite', regions: [regionA, regionB] });
  publishers.push(pub);
});

afterAll(async () => {
  for (const c of consumers) await c.close().catch(() => {});
  for (const p of publishers) p.close();
  await Promise.all(procs.map((p) => p.kill()));
  rmSync(dir, { recursive: true, force: true });
  for (const ks of keyspaces) await dropKeyspace(cassandra, ks).catch(() => {});
});

describe('fault suite: SDK consumers', () => {
  it('the consume service killed while 20 consumers poll: fallback snapshot, then back', async () => {
    const topic = 'fault.fleet-fallback';
    await pub.createTopic({ name: topic, owner: 'fault', inlineThresholdBytes: 1024 });
    const port = await freePort();
    let only = await start('consume-service', deployment, { QUIRE_CONSUME_GRPC_PORT: String(port) });
    const fleet = Array.from({ length: 20 }, (_, i) => consumer(deployment, { endpoints: [`127.0.0.1:${port}`], identity: { application: 'fleet', region: regionA, instance: `fleet-${i}` } }));
    const subs = fleet.map((c) => c.subscribe(topic, { decode: text }));
    const seen = subs.map(() => [] as Array<[number, string]>);
    subs.forEach((s, i) => s.on('update', (e) => seen[i]?.push([e.version, e.via])));
    await pub.publish(topic, { data: 'inline one' });
    await Promise.all(fleet.map((c) => c.ready()));
    await waitAll(() => subs.every((s) => s.version() === 1), 'all 20 on v1');

    const killedAt = Date.now();
    await only.kill();
    const v2 = await pub.publish(topic, { data: 'x'.repeat(4096) });
    await waitAll(() => subs.every((s) => s.version() === 2 && s.via() === 'snapshot'), 'all 20 on v2 from the S3 snapshot');
    const fallbackMs = Date.now() - killedAt;
    expect(fleet.every((c) => c.usingFallback())).toBe(true);

    const restartedAt = Date.now();
    only = await start('consume-service', deployment, { QUIRE_CONSUME_GRPC_PORT: String(port) });
    await waitAll(() => fleet.every((c) => !c.usingFallback()), 'all 20 back on the service');
    const recoverMs = Date.now() - restartedAt;
    const v3 = await pub.publish(topic, { data: 'inline three' });
    await waitAll(() => subs.every((s) => s.version() === v3.version && s.via() === 'release'), 'all 20 on v3 from the service');
    const failedApplies = (await Promise.all(fleet.map((c) => metric(c.metrics, 'quire_client_apply_failures_total')))).reduce((a, b) => a + b, 0);
    expect(failedApplies).toBe(0);
    // Nothing lost, nothing out of order: every consumer saw 1 → 2 (snapshot) → 3 (service).
    for (const s of seen) expect(s).toEqual([[1, 'release'], [v2.version, 'snapshot'], [v3.version, 'release']]);
    fault(`consume killed under 20 long-polling consumers: all 20 on the version published meanwhile via the S3 snapshot ${fallbackMs} ms after the kill; all back on the service ${recoverMs} ms after its restart; 0 failed applies, 0 versions lost`);
  });

  it('two consume replicas, one killed: 20 consumers go on with the other, no failed apply', async () => {
    const topic = 'fault.fleet-replicas';
    await pub.createTopic({ name: topic, owner: 'fault' });
    const [pA, pB] = [await freePort(), await freePort()];
    const a = await start('consume-service', deployment, { QUIRE_CONSUME_GRPC_PORT: String(pA) });
    await start('consume-service', deployment, { QUIRE_CONSUME_GRPC_PORT: String(pB) });
    const fleet = Array.from({ length: 20 }, (_, i) => consumer(deployment, { endpoints: [`127.0.0.1:${pA}`, `127.0.0.1:${pB}`], identity: { application: 'pair', instance: `pair-${i}` } }));
    const subs = fleet.map((c) => c.subscribe(topic, { decode: text }));
    await pub.publish(topic, { data: 'one' });
    await Promise.all(fleet.map((c) => c.ready()));
    await waitAll(() => subs.every((s) => s.version() === 1), 'all 20 on v1');
    await a.kill();
    const killedAt = Date.now();
    let last = 1;
    for (const data of ['two', 'three', 'four']) {
      last = (await pub.publish(topic, { data })).version;
      await waitAll(() => subs.every((s) => s.version() === last), `all 20 on v${last}`);
    }
    const ms = Date.now() - killedAt;
    const failedApplies = (await Promise.all(fleet.map((c) => metric(c.metrics, 'quire_client_apply_failures_total')))).reduce((x, y) => x + y, 0);
    const pollFailures = (await Promise.all(fleet.map((c) => metric(c.metrics, 'quire_client_poll_failures_total')))).reduce((x, y) => x + y, 0);
    expect(failedApplies).toBe(0);
    expect(pollFailures).toBe(0);
    expect(fleet.every((c) => !c.usingFallback())).toBe(true);
    expect(subs.every((s) => s.current() === 'four')).toBe(true);
    fault(`two consume replicas, one killed: 20 consumers got 3 more versions through the other in ${ms} ms; 0 failed applies, 0 failed polls, 0 fallbacks`);
  });

  it('a corrupted object in the consumer\'s region: rejected, the other region used, the previous value kept until then', async () => {
    const topic = 'fault.corrupt';
    await pub.createTopic({ name: topic, owner: 'fault', inlineThresholdBytes: 1024 });
    const consume = await start('consume-service', deployment);
    const v1 = await pub.publish(topic, { data: randomBytes(4096) });
    const c = consumer(deployment, { endpoints: [consume.grpcAddress], identity: { application: 'corrupt', region: regionA, instance: 'corrupt-1' } });
    const failures: RegionFailure[] = [];
    c.on('region-failure', (f) => failures.push(f));
    const sub = c.subscribe(topic);
    await c.ready();
    await waitAll(() => sub.version() === v1.version, 'v1');
    // v2's copy in region A is overwritten after the commit (same size, other bytes).
    const data = randomBytes(4096);
    const v2 = await pub.publish(topic, { data, scopes: [{ cluster: 'nobody' }] });
    const loc = v2.pointer.kind === 's3' ? v2.pointer.locations.find((l) => l.region === regionA) : undefined;
    const ra = deployment.regions.find((r) => r.name === regionA) as Deployment['regions'][number];
    const admin = new S3Client({ endpoint: ra.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ra.accessKeyId, secretAccessKey: ra.secretAccessKey } });
    try {
      await admin.send(new PutObjectCommand({ Bucket: ra.bucket, Key: loc?.key as string, Body: randomBytes(4096) }));
    } finally {
      admin.destroy();
    }
    await pub.release(topic, v2.version, [{}]);
    await waitAll(() => sub.version() === v2.version, 'v2 from region B');
    expect(Buffer.from(sub.current()).equals(data)).toBe(true);
    expect(failures.filter((f) => f.what === `${topic} version ${v2.version}`).map((f) => [f.region, f.reason])).toEqual([[regionA, 'corrupt']]);
    expect(await metric(c.metrics, 'quire_client_apply_failures_total', { topic })).toBe(0);
    fault(`object corrupted in region A: rejected by SHA-256 (1 region failure reported), applied from region B; 0 failed applies, 0 corrupt values served`);
  });

  it('a consumer restarted while the service and S3 are down starts from its disk cache', async () => {
    const topic = 'fault.cold-start';
    const cacheDir = join(dir, 'cache');
    await pub.createTopic({ name: topic, owner: 'fault' });
    const consume = await start('consume-service', deployment);
    await pub.publish(topic, { data: '{"devices":["tv","phone"]}' });
    const first = consumer(deployment, { endpoints: [consume.grpcAddress], identity: { application: 'cold', instance: 'cold-1' }, cacheDir });
    const s1 = first.subscribe(topic, { decode: text });
    await first.ready();
    await waitAll(() => s1.version() === 1, 'v1 applied and cached');
    await first.close();
    await consume.kill();
    const deadS3 = `http://127.0.0.1:${await freePort()}`;
    const startedAt = Date.now();
    const second = consumer(deployment, {
      endpoints: [consume.grpcAddress],
      s3: { [regionA]: { endpoint: deadS3, accessKeyId: 'x', secretAccessKey: 'y', bucket: 'gone' } },
      identity: { application: 'cold', region: regionA, instance: 'cold-2' },
      cacheDir,
      retry: { attempts: 2, baseDelayMs: 10 },
    });
    const s2 = second.subscribe(topic, { decode: text, defaultValue: '' });
    await second.ready();
    const readyMs = Date.now() - startedAt;
    expect(s2.version()).toBe(1);
    expect(s2.via()).toBe('cache');
    expect(s2.current()).toBe('{"devices":["tv","phone"]}');
    fault(`consumer restarted with the consume service and S3 down: ready from its disk cache in ${readyMs} ms with version 1 (verified), 0 versions lost`);
  });
});

describe('fault suite: S3 region A down', () => {
  let own: S3ProxyInstance;
  let d: Deployment;

  beforeAll(async () => {
    own = await s3proxyInstance(regionA);
    await own.start();
    // The same keyspace (no more schema work on the shared node), other buckets.
    d = {
      ...deployment,
      regions: [
        { ...own.region, bucket: uniqueBucket('fault-own-a') },
        { ...(s3.regions.find((r) => r.name === regionB) as (typeof s3.regions)[number]), bucket: uniqueBucket('fault-rb') },
      ],
    };
  });
  afterAll(async () => {
    await own?.wipe();
  });

  it('region-A consumers get a new version from region B while region A is down', { timeout: 240_000 }, async () => {
    const publishB = await start('publish-service', d);
    const consume = await start('consume-service', d);
    const pubB = createPublisher({ endpoint: publishB.grpcAddress, actor: 'fault-suite', regions: [regionA, regionB] });
    publishers.push(pubB);
    const topic = 'fault.region-down';
    await pubB.createTopic({ name: topic, owner: 'fault', inlineThresholdBytes: 1024 });
    const v1 = await pubB.publish(topic, { data: 'a'.repeat(2048) });
    const fleet = Array.from({ length: 5 }, (_, i) => consumer(d, { endpoints: [consume.grpcAddress], identity: { application: 'regional', region: regionA, instance: `ra-${i}` } }));
    const failures: RegionFailure[] = [];
    fleet.forEach((c) => c.on('region-failure', (f) => failures.push(f)));
    const subs = fleet.map((c) => c.subscribe(topic, { decode: text }));
    await Promise.all(fleet.map((c) => c.ready()));
    await waitAll(() => subs.every((s) => s.version() === v1.version), 'all on v1');
    // v2 is in both regions, released to nobody yet; then region A goes down and v2 goes out.
    const v2 = await pubB.publish(topic, { data: 'b'.repeat(2048), scopes: [{ cluster: 'nobody' }] });
    await own.stop();
    const downAt = Date.now();
    await pubB.release(topic, v2.version, [{}]);
    await waitAll(() => subs.every((s) => s.version() === v2.version), 'all on v2 from region B');
    const ms = Date.now() - downAt;
    expect(subs.every((s) => s.current() === 'b'.repeat(2048))).toBe(true);
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((f) => f.region === regionA && f.reason === 'unavailable')).toBe(true);
    const failedApplies = (await Promise.all(fleet.map((c) => metric(c.metrics, 'quire_client_apply_failures_total')))).reduce((x, y) => x + y, 0);
    expect(failedApplies).toBe(0);
    // A consume instance started while region A is down (nothing checked yet) still hands
    // v2 to a new region-A consumer: its check finds region A unreachable and v2 whole in B.
    const fresh = await start('consume-service', d);
    const late = consumer(d, { endpoints: [fresh.grpcAddress], identity: { application: 'regional', region: regionA, instance: 'ra-late' } });
    const lateSub = late.subscribe(topic, { decode: text });
    await late.ready();
    await waitAll(() => lateSub.version() === v2.version, 'the late consumer on v2 through a fresh consume instance');
    expect(lateSub.current()).toBe('b'.repeat(2048));
    fault(`S3 region A down: 5 region-A consumers applied the new version from region B ${ms} ms after its release (${failures.length} region-A failures reported, 0 failed applies); a consume instance started during the outage served it too`);
  });
});
