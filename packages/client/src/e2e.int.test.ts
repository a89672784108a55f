// The whole publish → poll → apply path on production adapters: the publish and consume
// services run as separate OS processes, each started from its app's entry point, on a
// real Cassandra (own keyspace) and two real s3proxy regions (own buckets); the SDK
// publishes and consumes from this process.
import { until } from './testing.ts';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startQuireProcess, quireTestStores, type QuireProcess } from '@quire/test-servers';
import { createConsumer, createPublisher, type Consumer, type Publisher, type UpdateEvent } from './index.ts';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const { cassandra, s3 } = inject('quireServers');
const testStores = quireTestStores({ cassandra, s3 }, 'e2e');
const buckets = Object.fromEntries(testStores.regions.map((r) => [r.name, r.bucket]));
const [regionA, regionB] = s3.regions.map((r) => r.name) as [string, string];
const s3Options = Object.fromEntries(
  s3.regions.map((r) => [r.name, { endpoint: r.endpoint, accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, forcePathStyle: true }]),
);
const env = {
  ...testStores.env,
  QUIRE_LOG_LEVEL: 'warn',
};

let dir: string;
let publishProc: QuireProcess;
let consumeProc: QuireProcess;
let pub: Publisher;
const consumers: Consumer[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-e2e-'));
  // The publish service migrates the keyspace and creates the buckets; the consume service starts after it.
  publishProc = await startQuireProcess('publish-service', { ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' });
  consumeProc = await startQuireProcess('consume-service', { ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0' });
  pub = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'e2e', regions: [regionA, regionB], consumeEndpoint: consumeProc.grpcAddress });
});

afterAll(async () => {
  for (const c of consumers) await c.close();
  pub?.close();
  const codes = await Promise.all([publishProc?.stop(), consumeProc?.stop()]);
  rmSync(dir, { recursive: true, force: true });
  expect(codes).toEqual([0, 0]);
});

function consumer(identity: { application: string } & Record<string, string>): Consumer {
  const c = createConsumer({ endpoints: [consumeProc.grpcAddress], identity, longPoll: { waitMs: 10_000 }, s3: s3Options });
  consumers.push(c);
  return c;
}

describe('end to end on Cassandra + S3, services as separate processes', () => {
  it('inline, 50 MiB in two regions and a registered object reach the right consumers, verified', async () => {
    const topic = 'e2e.devices';
    await pub.createTopic({ name: topic, owner: 'e2e', description: 'end to end' });

    // v1: inline, global.
    const v1 = await pub.publish(topic, { data: '{"devices":["tv"]}', contentType: 'application/json', metadata: { source: 'e2e' } });
    expect(v1.version).toBe(1);
    expect(v1.pointer).toMatchObject({ kind: 'inline' });

    // Two consumers with different identities.
    const canary = consumer({ application: 'checkout', cluster: 'checkout-canary', region: regionA, instance: 'canary-1' });
    const main = consumer({ application: 'checkout', cluster: 'checkout-main', region: regionB, instance: 'main-1' });
    const canarySub = canary.subscribe<Uint8Array>(topic);
    const mainSub = main.subscribe<Uint8Array>(topic);
    const mainUpdates: UpdateEvent<Uint8Array>[] = [];
    mainSub.on('update', (e) => mainUpdates.push(e));
    await Promise.all([canary.start(), main.start()]);
    await until(() => canarySub.version() === 1 && mainSub.version() === 1, 'both consumers on v1');

    // v2: 50 MiB from a file, streamed through the publish service to S3 in both regions.
    const file = join(dir, 'big.bin');
    const chunk = randomBytes(MiB);
    await pipeline(Readable.from((function* () { for (let i = 0; i < 50; i++) yield chunk; })()), createWriteStream(file));
    const bigSha = createHash('sha256');
    for (let i = 0; i < 50; i++) bigSha.update(chunk);
    let lastProgress = 0;
    const v2 = await pub.publish(topic, { file, contentType: 'application/octet-stream', onProgress: (p) => (lastProgress = p.sentBytes) });
    expect(lastProgress).toBe(50 * MiB);
    expect(v2).toMatchObject({ version: 2, size: 50 * MiB, sha256: bigSha.digest('hex') });
    expect(v2.pointer.kind).toBe('s3');
    expect(v2.pointer.kind === 's3' && v2.pointer.locations.map((l) => l.region).sort()).toEqual([regionA, regionB].sort());

    // v3: an object already in S3 (both regions), registered, released to the canary cluster only.
    const registered = Buffer.from('{"devices":["tv","phone","watch"]}');
    const key = `preexisting/${randomBytes(4).toString('hex')}.json`;
    for (const r of s3.regions) {
      const client = new S3Client({ endpoint: r.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } });
      await client.send(new PutObjectCommand({ Bucket: buckets[r.name], Key: key, Body: registered }));
      client.destroy();
    }
    const v3 = await pub.register(topic, { key, regions: [regionA, regionB], contentType: 'application/json', scopes: [{ cluster: 'checkout-canary' }] });
    expect(v3).toMatchObject({ version: 3, size: registered.length, sha256: sha(registered) });

    // The canary gets v3 (its scope); main gets v2, the 50 MiB one, whole and checksum-verified.
    await until(() => canarySub.version() === 3, 'canary on v3', 30_000);
    await until(() => mainSub.version() === 2, 'main on v2', 60_000);
    expect(Buffer.from(canarySub.current()).equals(registered)).toBe(true);
    const big = mainSub.current();
    expect(big.byteLength).toBe(50 * MiB);
    expect(sha(big)).toBe(v2.sha256);
    expect(mainUpdates.at(-1)?.descriptor.pointer).toMatchObject({ kind: 's3' });
    // The consume service put main's own region first.
    const firstRegion = mainUpdates.at(-1)?.descriptor.pointer.kind === 's3' ? mainUpdates.at(-1)?.descriptor.pointer : undefined;
    expect(firstRegion && 'locations' in firstRegion ? firstRegion.locations[0]?.region : undefined).toBe(regionB);
  });

  it('a consumer three versions behind jumps straight to the newest', async () => {
    const topic = 'e2e.jump';
    await pub.createTopic({ name: topic, owner: 'e2e', description: 'jump' });
    for (let i = 1; i <= 4; i++) await pub.publish(topic, { data: `v${i}` });
    // A poll (REST, as any HTTP client would) from a consumer holding v1.
    let body: { updates: Array<{ topic: string; version: { version: number } }> } = { updates: [] };
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      const res = await fetch(`${consumeProc.httpUrl}/v1/poll`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ identity: { application: 'late', instance: 'late-1' }, subscriptions: [{ topic, knownVersion: 1 }], waitMs: 2000 }),
      });
      expect(res.status).toBe(200);
      body = (await res.json()) as typeof body;
      if (body.updates.length > 0 && Number(body.updates[0]?.version.version) === 4) break;
    }
    expect(body.updates.map((u) => [u.topic, Number(u.version.version)])).toEqual([[topic, 4]]);
  });
});
