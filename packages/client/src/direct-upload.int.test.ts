// Direct upload: the SDK writes a large payload straight to both s3proxy regions, the
// publish service (real app, embedded metadata store + S3 blob store) commits it after
// checking size and SHA-256, and a consumer reads it back verified.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createConsumeApp, loadConfig as loadConsumeConfig, type ConsumeApp } from '@quire/consume-service';
import { createPublishApp, loadConfig as loadPublishConfig, type PublishApp } from '@quire/publish-service';
import { uniqueBucket } from '@quire/test-servers';
import { createConsumer, createDirectUploader, createPublisher, type Consumer, type DirectUploader, type Publisher } from './index.ts';
import { uploadRanges } from './multipart.ts';

const { s3 } = inject('quireServers');
const buckets = Object.fromEntries(s3.regions.map((r) => [r.name, uniqueBucket('direct-' + r.name)]));
const s3Options = Object.fromEntries(
  s3.regions.map((r) => [r.name, { endpoint: r.endpoint, accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, forcePathStyle: true }]),
);
const admin = Object.fromEntries(
  s3.regions.map((r) => [r.name, new S3Client({ endpoint: r.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } })]),
);

let dir: string;
let pubApp: PublishApp;
let consumeApp: ConsumeApp;
let pub: Publisher;
let direct: DirectUploader;
let consumer: Consumer | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-direct-'));
  const env = { QUIRE_DATA_DIR: dir, QUIRE_LOG_LEVEL: 'silent', QUIRE_S3_REGIONS: JSON.stringify(s3.regions.map((r) => ({ ...r, bucket: buckets[r.name] }))) };
  pubApp = await createPublishApp(loadPublishConfig({ ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' }));
  consumeApp = await createConsumeApp(loadConsumeConfig({ ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0' }));
  pub = createPublisher({ endpoint: pubApp.grpcAddress, actor: 'direct' });
  direct = createDirectUploader({ endpoint: pubApp.grpcAddress, actor: 'direct', s3: s3Options });
});

afterAll(async () => {
  await consumer?.close();
  direct?.close();
  pub?.close();
  await consumeApp?.close();
  await pubApp?.close();
  for (const c of Object.values(admin)) c.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('direct upload from the SDK', () => {
  it('uploads a 12 MiB file to both regions itself, then the service commits it', async () => {
    await pub.createTopic({ name: 'direct.big', inlineThresholdBytes: 1024 });
    const data = randomBytes(12 * 1024 * 1024);
    const file = join(dir, 'big.bin');
    writeFileSync(file, data);
    const progress: Record<string, number> = {};
    const v = await direct.publish('direct.big', { file, metadata: { via: 'direct' }, onProgress: (p) => (progress[p.region] = p.loaded) });
    const sha = createHash('sha256').update(data).digest('hex');
    expect(v).toMatchObject({ version: 1, size: data.length, sha256: sha, metadata: { via: 'direct' } });
    expect(Object.values(progress)).toEqual(s3.regions.map(() => data.length));
    for (const loc of v.pointer.kind === 's3' ? v.pointer.locations : []) {
      const head = await (admin[loc.region] as S3Client).send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      expect(head.ContentLength).toBe(data.length);
    }

    consumer = createConsumer({ endpoints: [consumeApp.grpcAddress], identity: { application: 'demo', region: s3.regions[1]?.name ?? '' }, longPoll: { waitMs: 5000 }, s3: s3Options });
    const sub = consumer.subscribe<Uint8Array>('direct.big');
    await consumer.start();
    const end = Date.now() + 10_000;
    while (sub.version() !== 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(createHash('sha256').update(sub.current()).digest('hex')).toBe(sha);
  });

  it('a commit the service refuses leaves no version and removes the uploaded objects', async () => {
    const before = await Promise.all(s3.regions.map((r) => (admin[r.name] as S3Client).send(new ListObjectsV2Command({ Bucket: buckets[r.name], Prefix: 'topics/direct.big/' }))));
    // Metadata the service refuses: the upload happens, the commit fails, the objects go.
    await expect(direct.publish('direct.big', { data: randomBytes(64 * 1024), metadata: { 'bad key': 'x' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'metadata.bad key' });
    const after = await Promise.all(s3.regions.map((r) => (admin[r.name] as S3Client).send(new ListObjectsV2Command({ Bucket: buckets[r.name], Prefix: 'topics/direct.big/' }))));
    expect(after.map((a) => a.KeyCount)).toEqual(before.map((b) => b.KeyCount));
    expect((await pub.getTopic('direct.big')).headVersion).toBe(1);
    await expect(direct.publish('direct.nope', { data: randomBytes(10) })).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'topic' });
  });

  it('refuses an encrypted topic before uploading anything', async () => {
    await pub.createTopic({ name: 'direct.secret', inlineThresholdBytes: 1024, encryption: { keyId: 'k-direct' } });
    await expect(direct.publish('direct.secret', { data: randomBytes(64 * 1024) })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', field: 'topic' });
    const listed = await Promise.all(s3.regions.map((r) => (admin[r.name] as S3Client).send(new ListObjectsV2Command({ Bucket: buckets[r.name], Prefix: 'topics/direct.secret/' }))));
    expect(listed.map((l) => l.KeyCount ?? 0)).toEqual(s3.regions.map(() => 0));
  });

  it('a file written to while it uploads is refused (DATA_LOSS naming the file); no version, no object left', async () => {
    await pub.createTopic({ name: 'direct.changing', inlineThresholdBytes: 1024 });
    const file = join(dir, 'changing.bin');
    writeFileSync(file, randomBytes(11 * 1024 * 1024));
    let appended = false;
    const changing = direct.publish('direct.changing', {
      file,
      onProgress: () => {
        if (appended) return;
        appended = true;
        appendFileSync(file, 'more bytes');
      },
    });
    await expect(changing).rejects.toMatchObject({ code: 'DATA_LOSS', field: 'file' });
    expect((await pub.getTopic('direct.changing')).headVersion).toBe(0);
    const listed = await Promise.all(s3.regions.map((r) => (admin[r.name] as S3Client).send(new ListObjectsV2Command({ Bucket: buckets[r.name], Prefix: 'topics/direct.changing/' }))));
    expect(listed.map((l) => l.KeyCount ?? 0)).toEqual(s3.regions.map(() => 0));
  });

  it('uploadRanges: parts read from their ranges make the same object; a refused part aborts the multipart upload', async () => {
    const region = s3.regions[0]!;
    const client = admin[region.name] as S3Client;
    const bucket = buckets[region.name] as string;
    // 3 parts of 5 MiB and a short last one; the object is byte for byte the file.
    const data = randomBytes(16 * 1024 * 1024 + 12345);
    const file = join(dir, 'ranges.bin');
    writeFileSync(file, data);
    let bytes = 0;
    await uploadRanges(client, bucket, 'ranges/whole', { file, size: data.length }, { partSize: 5 * 1024 * 1024, queueSize: 3, contentType: 'x/test', onBytes: (d) => (bytes += d) });
    expect(bytes).toBe(data.length);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'ranges/whole' }));
    expect(got.ContentType).toBe('x/test');
    expect(createHash('sha256').update(await got.Body!.transformToByteArray()).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    // A source shorter than it claims: S3 refuses the short part (not retried, 4xx), the
    // upload is aborted: no object, no multipart upload left open.
    await expect(uploadRanges(client, bucket, 'ranges/short', { file, size: data.length + 6 * 1024 * 1024 }, { partSize: 5 * 1024 * 1024, queueSize: 2, contentType: 'x/test' })).rejects.toThrow();
    const left = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'ranges/short' }));
    expect(left.KeyCount ?? 0).toBe(0);
    const open = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'ranges/short' }));
    expect(open.Uploads ?? []).toEqual([]);
  });

  it('PrepareUpload over REST names the key and one location per region; an unknown region is refused', async () => {
    const post = (body: unknown) =>
      fetch(`${pubApp.httpUrl}/v1/topics/direct.big/uploads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const ok = await post({});
    expect(ok.status).toBe(201);
    const prepared = (await ok.json()) as { key: string; locations: Array<{ region: string; bucket: string; key: string }> };
    expect(prepared.locations.map((l) => [l.region, l.bucket, l.key])).toEqual(s3.regions.map((r) => [r.name, buckets[r.name], prepared.key]));
    const bad = await post({ regions: ['mars'] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toMatch(/^regions/);
  });
});
