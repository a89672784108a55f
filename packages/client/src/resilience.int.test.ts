// The consumer when things break, on production adapters: the publish service and the
// consume services run as separate processes (killed for real) on Cassandra + two s3proxy
// regions. Several consume instances with one killed, the only one killed (S3 snapshot
// fallback and return), everything down (disk cache), corrupt S3 objects (region failover).
import { until as untilDefault } from './testing.ts';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Code, type QuireError } from '@quire/core';
import { startQuireProcess, quireTestStores, type QuireProcess } from '@quire/test-servers';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { snapshotKey } from '@quire/core';
import { S3Downloader } from './download.ts';
import { readSnapshot } from './snapshot-fallback.ts';
import { createConsumer, createPublisher, type Consumer, type ConsumerOptions, type Publisher, type RegionFailure, type UpdateEvent } from './index.ts';

const { cassandra, s3 } = inject('quireServers');
const testStores = quireTestStores({ cassandra, s3 }, 'res');
const buckets = Object.fromEntries(testStores.regions.map((r) => [r.name, r.bucket]));
const [regionA, regionB] = s3.regions.map((r) => r.name) as [string, string];
/** What a consumer needs to read S3 (and the snapshots) in every region. */
const s3Options = Object.fromEntries(
  s3.regions.map((r) => [r.name, { endpoint: r.endpoint, accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, bucket: buckets[r.name] }]),
);
const admin = Object.fromEntries(
  s3.regions.map((r) => [
    r.name,
    new S3Client({ endpoint: r.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } }),
  ]),
);
const overwrite = (region: string, key: string, body: Uint8Array) =>
  (admin[region] as S3Client).send(new PutObjectCommand({ Bucket: buckets[region], Key: key, Body: body }));

const env = {
  ...testStores.env,
  QUIRE_LOG_LEVEL: 'warn',
};

/** A port nothing listens on (taken from the OS, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const procs: QuireProcess[] = [];
async function startConsume(grpcPort: number): Promise<QuireProcess> {
  const p = await startQuireProcess('consume-service', { ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: String(grpcPort) });
  procs.push(p);
  return p;
}

let dir: string;
let pub: Publisher;
let live: QuireProcess;
const consumers: Consumer[] = [];

function consumer(options: Partial<ConsumerOptions> & Pick<ConsumerOptions, 'endpoints' | 'identity'>): Consumer {
  const c = createConsumer({
    longPoll: { waitMs: 5000 },
    s3: s3Options,
    metrics: true,
    healthCheck: { intervalMs: 300 },
    reconnect: { baseMs: 50, maxMs: 500 },
    rearmJitterMs: 200,
    ...options,
  });
  consumers.push(c);
  return c;
}

/** A metric's value (summed over the series matching `labels`). */
async function metric(registry: Registry | undefined, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry?.getSingleMetric(name);
  if (m === undefined) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const json = <T>() => (b: Uint8Array): T => JSON.parse(text(b)) as T;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-resilience-'));
  // The publish service migrates the keyspace, creates the buckets and (as scheduler leader) writes the snapshots.
  const publishProc = await startQuireProcess('publish-service', {
    ...env,
    QUIRE_PUBLISH_HTTP_PORT: '0',
    QUIRE_PUBLISH_GRPC_PORT: '0',
    QUIRE_SCHEDULER_TICK_MS: '100',
    QUIRE_LEASE_TTL_MS: '3000',
  });
  procs.push(publishProc);
  live = await startConsume(0);
  pub = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'resilience', regions: [regionA, regionB], consumeEndpoint: live.grpcAddress });
});

afterAll(async () => {
  for (const c of consumers) await c.close();
  pub?.close();
  await Promise.all(procs.map((p) => p.kill()));
  for (const a of Object.values(admin)) a.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const until = (fn: () => boolean, what: string, timeoutMs = 30_000): Promise<void> => untilDefault(fn, what, timeoutMs);

describe('consumer resilience (services as processes, Cassandra + two S3 regions)', () => {
  it('two consume instances: one is killed, the consumer goes on with the other and no failed apply', async () => {
    const topic = 'res.balance';
    await pub.createTopic({ name: topic, owner: 'res' });
    // Instance A of our own, B is the shared `live` one (one process start less).
    const pA = await freePort();
    const pB = Number(live.grpcAddress.split(':').pop());
    const a = await startConsume(pA);
    const c = consumer({ endpoints: [`127.0.0.1:${pA}`, `127.0.0.1:${pB}`], identity: { application: 'lb', instance: 'lb-1' } });
    const sub = c.subscribe(topic, { decode: text });
    const updates: number[] = [];
    const errors: QuireError[] = [];
    sub.on('update', (e) => updates.push(e.version));
    sub.on('error', (e) => errors.push(e));
    await pub.publish(topic, { data: 'one' });
    await c.ready();
    await until(() => sub.version() === 1, 'v1');
    await until(() => c.endpoints().every((e) => e.state === 'serving'), 'both endpoints healthy');
    // (B, running before the topic existed, may have answered NOT_FOUND until its cache saw it.)
    errors.length = 0;

    await a.kill();
    // Several versions while one instance is gone: every one arrives through the other.
    for (const data of ['two', 'three', 'four']) {
      const v = await pub.publish(topic, { data });
      await until(() => sub.version() === v.version, `v${v.version}`);
    }
    await until(() => c.endpoints().find((e) => e.address === `127.0.0.1:${pA}`)?.state === 'not-serving', 'the dead endpoint marked not serving');
    expect(sub.current()).toBe('four');
    expect(updates).toEqual([1, 2, 3, 4]);
    expect(errors).toEqual([]);
    expect(c.usingFallback()).toBe(false);
    expect(await metric(c.metrics, 'quire_client_apply_failures_total')).toBe(0);
    expect(await metric(c.metrics, 'quire_client_poll_failures_total')).toBe(0);
    expect(await metric(c.metrics, 'quire_client_applied_version', { topic })).toBe(4);

    // A host name is resolved to its addresses, each health-checked on its own.
    const byName = consumer({ endpoints: [`dns:localhost:${pB}`], identity: { application: 'lb', instance: 'lb-2' } });
    const named = byName.subscribe(topic, { decode: text });
    await byName.ready();
    expect(named.current()).toBe('four');
    await until(() => byName.endpoints().some((e) => e.address === `127.0.0.1:${pB}` && e.state === 'serving'), 'localhost resolved and healthy');
  });

  it('the only consume instance is killed: the consumer runs on the S3 snapshot, then returns to the service', async () => {
    const topic = 'res.fallback';
    await pub.createTopic({ name: topic, owner: 'res', inlineThresholdBytes: 1024 });
    const port = await freePort();
    let only = await startConsume(port);
    const c = consumer({ endpoints: [`127.0.0.1:${port}`], identity: { application: 'fb', region: regionA, instance: 'fb-1' }, fallback: { refreshMs: 300 } });
    const sub = c.subscribe(topic, { decode: text });
    const updates: UpdateEvent<string>[] = [];
    sub.on('update', (e) => updates.push(e));
    const fallbacks: QuireError[] = [];
    let recovered = 0;
    c.on('fallback', (e) => fallbacks.push(e.reason));
    c.on('recovered', () => recovered++);
    c.on('error', () => {});
    await pub.publish(topic, { data: 'inline one' });
    await c.ready();
    await until(() => sub.version() === 1, 'v1 from the service');
    expect(sub.via()).toBe('release');
    const pollFailuresBefore = await metric(c.metrics, 'quire_client_poll_failures_total');

    await only.kill();
    // v2 is stored in S3 (over the 1 KiB inline threshold): the snapshot names its locations.
    const big = 'x'.repeat(4096);
    const v2 = await pub.publish(topic, { data: big });
    expect(v2.pointer.kind).toBe('s3');
    await until(() => fallbacks.length > 0, 'the fallback event');
    expect(fallbacks[0]?.code).toBe(Code.UNAVAILABLE);
    await until(() => sub.version() === 2, 'v2 from the S3 snapshot');
    expect(sub.via()).toBe('snapshot');
    expect(sub.current()).toBe(big);
    expect(c.usingFallback()).toBe(true);
    expect(await metric(c.metrics, 'quire_client_fallback_active')).toBe(1);
    expect(await metric(c.metrics, 'quire_client_poll_failures_total')).toBeGreaterThan(pollFailuresBefore);
    expect(await metric(c.metrics, 'quire_client_applied_version', { topic })).toBe(2);
    expect(await metric(c.metrics, 'quire_client_staleness_seconds', { topic })).toBeGreaterThan(0);

    only = await startConsume(port);
    await until(() => recovered === 1, 'back on the service');
    expect(c.usingFallback()).toBe(false);
    expect(await metric(c.metrics, 'quire_client_fallback_active')).toBe(0);
    const v3 = await pub.publish(topic, { data: 'inline three' });
    await until(() => sub.version() === v3.version, 'v3 from the service');
    expect(sub.via()).toBe('release');
    expect(updates.map((u) => [u.version, u.via])).toEqual([
      [1, 'release'],
      [2, 'snapshot'],
      [3, 'release'],
    ]);
  });

  it('service and S3 both down: a restarted consumer starts from its disk cache; a corrupt cache file is refused', async () => {
    const topic = 'res.cache';
    const cacheDir = join(dir, 'cache');
    await pub.createTopic({ name: topic, owner: 'res' });
    await pub.publish(topic, { data: '{"devices":["tv"]}' });
    await pub.publish(topic, { data: '{"devices":["tv","phone"]}' });
    const first = consumer({ endpoints: [live.grpcAddress], identity: { application: 'cache', instance: 'cache-1' }, cacheDir });
    const s1 = first.subscribe(topic, { decode: json<{ devices: string[] }>() });
    await first.ready();
    await until(() => s1.version() === 2, 'v2 applied (and cached)');
    await first.close();

    // A temporary file a crash left behind an hour ago is swept at the next start.
    const stale = join(cacheDir, `${topic}.quire.1234.deadbeef.tmp`);
    writeFileSync(stale, 'half a write');
    utimesSync(stale, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));

    // Everything down: no consume service, no S3 (closed ports).
    const dead = `127.0.0.1:${await freePort()}`;
    const deadS3 = `http://127.0.0.1:${await freePort()}`;
    const down = {
      endpoints: [dead],
      s3: { [regionA]: { endpoint: deadS3, accessKeyId: 'x', secretAccessKey: 'y', bucket: 'gone' } },
      identity: { application: 'cache', region: regionA, instance: 'cache-2' },
      cacheDir,
      retry: { attempts: 2, baseDelayMs: 10 },
    } satisfies Partial<ConsumerOptions>;
    const second = consumer(down);
    second.on('error', () => {});
    const s2 = second.subscribe(topic, { decode: json<{ devices: string[] }>(), defaultValue: { devices: [] } });
    await second.ready();
    expect(s2.version()).toBe(2);
    expect(s2.via()).toBe('cache');
    expect(s2.current()).toEqual({ devices: ['tv', 'phone'] });
    expect(second.usingFallback()).toBe(true);
    expect(await metric(second.metrics, 'quire_client_cache_loads_total', { result: 'applied' })).toBe(1);
    expect(existsSync(stale)).toBe(false);
    await second.close();

    // One flipped payload byte: the file is refused, the subscription starts from its default.
    const file = join(cacheDir, `${topic}.quire`);
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x20;
    writeFileSync(file, bytes);
    const third = consumer({ ...down, identity: { ...down.identity, instance: 'cache-3' } });
    third.on('error', () => {});
    const s3sub = third.subscribe(topic, { decode: json<{ devices: string[] }>(), defaultValue: { devices: [] } });
    const errors: QuireError[] = [];
    s3sub.on('error', (e) => errors.push(e));
    await third.ready();
    expect(s3sub.version()).toBe(0);
    expect(s3sub.current()).toEqual({ devices: [] });
    expect(errors.find((e) => e.field === 'cacheDir')?.code).toBe(Code.DATA_LOSS);
    expect(await metric(third.metrics, 'quire_client_cache_loads_total', { result: 'corrupt' })).toBe(1);
  });

  it('a corrupt S3 object is rejected and the next region used; every copy corrupt keeps the previous version; each failure reported', async () => {
    const topic = 'res.regions';
    await pub.createTopic({ name: topic, owner: 'res', inlineThresholdBytes: 1024 });
    const v1 = await pub.publish(topic, { data: randomBytes(4096) });
    const v2data = randomBytes(4096);
    const v2 = await pub.publish(topic, { data: v2data });
    if (v2.pointer.kind !== 's3') throw new Error('expected an S3 version');
    // Region A's copy of v2 is overwritten after the commit.
    const keyOf = (v: typeof v2, region: string) => (v.pointer.kind === 's3' ? v.pointer.locations.find((l) => l.region === region)?.key : undefined) as string;
    await overwrite(regionA, keyOf(v2, regionA), randomBytes(4096));
    const c = consumer({ endpoints: [live.grpcAddress], identity: { application: 'regions', region: regionA, instance: 'regions-1' } });
    const failures: RegionFailure[] = [];
    c.on('region-failure', (f) => failures.push(f));
    const sub = c.subscribe(topic);
    const errors: QuireError[] = [];
    sub.on('error', (e) => errors.push(e));
    await c.ready();
    await until(() => sub.version() === v2.version, 'v2 from region B');
    expect(Buffer.from(sub.current()).equals(v2data)).toBe(true);
    expect(failures.map((f) => [f.region, f.reason])).toEqual([[regionA, 'corrupt']]);
    // (The instance's topic cache may not know the just-created topic on the first poll: NOT_FOUND then.)
    expect(errors.filter((e) => e.code !== Code.NOT_FOUND)).toEqual([]);
    expect(await metric(c.metrics, 'quire_client_download_failures_total', { region: regionA, reason: 'corrupt' })).toBe(1);
    expect(v1.version).toBeLessThan(v2.version);

    // v3 goes to nobody first, both copies are corrupted, then it is released to everyone.
    const v3 = await pub.publish(topic, { data: randomBytes(4096), scopes: [{ cluster: 'nobody' }] });
    for (const r of [regionA, regionB]) await overwrite(r, keyOf(v3, r), randomBytes(4096));
    await pub.release(topic, v3.version, [{}]);
    await until(() => errors.some((e) => e.code === Code.DATA_LOSS), 'the refused v3');
    expect(errors.filter((e) => e.code !== Code.NOT_FOUND).map((e) => e.code)).toEqual([Code.DATA_LOSS]);
    expect(sub.version()).toBe(v2.version);
    expect(Buffer.from(sub.current()).equals(v2data)).toBe(true);
    expect(failures.filter((f) => f.what === `${topic} version ${v3.version}`).map((f) => [f.region, f.reason])).toEqual([
      [regionA, 'corrupt'],
      [regionB, 'corrupt'],
    ]);
    expect(await metric(c.metrics, 'quire_client_apply_failures_total', { topic })).toBe(1);
  });

  it('a corrupt snapshot in the own region is refused and reported; the next region is read; a consumer starts from it', async () => {
    const topic = 'res.snapshot';
    await pub.createTopic({ name: topic, owner: 'res' });
    const v1 = await pub.publish(topic, { data: 'snap' });
    // Wait for the scheduler to write v1's snapshot in both regions.
    const key = snapshotKey(topic);
    const holds = async (region: string): Promise<boolean> => {
      try {
        const res = await (admin[region] as S3Client).send(new GetObjectCommand({ Bucket: buckets[region], Key: key }));
        const body = JSON.parse(await (res.Body as { transformToString(): Promise<string> }).transformToString()) as { versions: { version: number }[] };
        return body.versions.some((v) => v.version === v1.version);
      } catch {
        return false;
      }
    };
    const end = Date.now() + 30_000;
    while (!((await holds(regionA)) && (await holds(regionB)))) {
      if (Date.now() > end) throw new Error('no snapshot of v1 in both regions');
      await new Promise((r) => setTimeout(r, 100));
    }
    await overwrite(regionA, key, Buffer.from('{"format":"quire.snapshot/1","topic":"res.snap'));
    const reader = new S3Downloader(s3Options, regionA);
    const failures: RegionFailure[] = [];
    reader.onRegionFailure = (f) => failures.push(f);
    try {
      const read = await readSnapshot(reader, topic);
      expect(read.region).toBe(regionB);
      expect(read.snapshot.versions.map((v) => v.version)).toContain(v1.version);
      expect(failures.map((f) => [f.region, f.reason, f.what])).toEqual([[regionA, 'corrupt', `snapshot of ${topic}`]]);
    } finally {
      reader.close();
    }

    // A consumer starting while no consume instance answers starts from that snapshot.
    const fresh = consumer({
      endpoints: [`127.0.0.1:${await freePort()}`],
      identity: { application: 'snap', region: regionA, instance: 'snap-1' },
      retry: { attempts: 2, baseDelayMs: 10 },
    });
    fresh.on('error', () => {});
    const regionFailures: RegionFailure[] = [];
    fresh.on('region-failure', (f) => regionFailures.push(f));
    const sub = fresh.subscribe(topic, { decode: text });
    await fresh.ready();
    expect(fresh.usingFallback()).toBe(true);
    expect([sub.version(), sub.via(), sub.current()]).toEqual([v1.version, 'snapshot', 'snap']);
    expect(regionFailures.map((f) => [f.region, f.reason])).toEqual([[regionA, 'corrupt']]);
  });
});
