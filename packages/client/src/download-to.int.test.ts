// consumer.downloadTo: a version's bytes streamed into a file (verified, then renamed), on
// a real publish and consume service (in process, embedded metadata store in a temp dir)
// and two s3proxy regions (a bucket of this file's own in each). Objects are corrupted
// behind the services' backs with a plain S3 client.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createConsumeApp, loadConfig as loadConsumeConfig, type ConsumeApp } from '@quire/consume-service';
import { createPublishApp, loadConfig as loadPublishConfig, type PublishApp } from '@quire/publish-service';
import { uniqueBucket } from '@quire/test-servers';
import {
  addKeyringKey,
  createConsumer,
  createLocalKeyring,
  createPublisher,
  type Consumer,
  type ConsumerOptions,
  type DownloadProgress,
  type Publisher,
  type RegionFailure,
  type VersionInfo,
} from './index.ts';

const { s3 } = inject('quireServers');
const s3Options = Object.fromEntries(
  s3.regions.map((r) => [r.name, { endpoint: r.endpoint, accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, forcePathStyle: true }]),
);
const [regionA, regionB] = s3.regions.map((r) => r.name) as [string, string];
const buckets = Object.fromEntries(s3.regions.map((r) => [r.name, uniqueBucket('dlto-' + r.name)]));
const admin = Object.fromEntries(
  s3.regions.map((r) => [
    r.name,
    new S3Client({ endpoint: r.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } }),
  ]),
);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let dir: string;
let out: string;
let ring: string;
let pubApp: PublishApp;
let consumeApp: ConsumeApp;
let pub: Publisher;
const consumers: Consumer[] = [];

function consumer(options: Partial<ConsumerOptions> = {}): Consumer {
  const c = createConsumer({ endpoints: [consumeApp.grpcAddress], identity: { application: 'big', region: regionA }, s3: s3Options, ...options });
  consumers.push(c);
  return c;
}

/** A fresh empty directory for one test's files. */
function outDir(name: string): string {
  const d = join(out, name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d);
  return d;
}

function s3Key(v: VersionInfo, region: string): string {
  if (v.pointer.kind !== 's3') throw new Error('not in S3');
  const loc = v.pointer.locations.find((l) => l.region === region);
  if (loc === undefined) throw new Error(`no location in ${region}`);
  return loc.key;
}

const overwrite = (region: string, key: string, body: Uint8Array) =>
  (admin[region] as S3Client).send(new PutObjectCommand({ Bucket: buckets[region], Key: key, Body: body }));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-dlto-'));
  out = join(dir, 'out');
  mkdirSync(out);
  ring = join(dir, 'keyring.json');
  await addKeyringKey(ring, 'big-2026');
  const env = {
    QUIRE_DATA_DIR: join(dir, 'data'),
    QUIRE_S3_REGIONS: JSON.stringify(s3.regions.map((r) => ({ ...r, bucket: buckets[r.name] }))),
    QUIRE_LOG_LEVEL: 'silent',
  };
  pubApp = await createPublishApp(loadPublishConfig({ ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' }));
  consumeApp = await createConsumeApp(loadConsumeConfig({ ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0', QUIRE_FLEET_FLUSH_MS: '60000' }));
  pub = createPublisher({ endpoint: pubApp.grpcAddress, actor: 'dlto', keyring: createLocalKeyring(ring) });
  await pub.createTopic({ name: 'dlto.big', inlineThresholdBytes: 1024 });
}, 60_000);

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.close()));
  pub?.close();
  await consumeApp?.close();
  await pubApp?.close();
  for (const c of Object.values(admin)) c.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('consumer.downloadTo', () => {
  it('writes exactly the version bytes, reports progress, and leaves no temp file', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const v = await pub.publish('dlto.big', { data: bytes });
    expect(v.pointer.kind).toBe('s3');
    const d = outDir('plain');
    const target = join(d, 'payload.bin');
    const progress: DownloadProgress[] = [];
    const c = consumer();
    expect(await c.downloadTo('dlto.big', v.version, target, { onProgress: (p) => progress.push(p) })).toBe(target);
    expect(sha(readFileSync(target))).toBe(v.sha256);
    expect(readFileSync(target).equals(bytes)).toBe(true);
    expect(readdirSync(d)).toEqual(['payload.bin']);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toEqual({ loaded: bytes.length, total: bytes.length, source: regionA });
    expect(progress.every((p, i) => i === 0 || p.loaded > (progress[i - 1] as DownloadProgress).loaded)).toBe(true);
  });

  it('writes inline versions the same way', async () => {
    const v = await pub.publish('dlto.big', { data: 'small and inline' });
    expect(v.pointer.kind).toBe('inline');
    const d = outDir('inline');
    const progress: DownloadProgress[] = [];
    await consumer().downloadTo('dlto.big', v.version, join(d, 'x.txt'), { onProgress: (p) => progress.push(p) });
    expect(readFileSync(join(d, 'x.txt'), 'utf8')).toBe('small and inline');
    expect(readdirSync(d)).toEqual(['x.txt']);
    expect(progress).toEqual([{ loaded: 16, total: 16, source: 'inline' }]);
  });

  it('rejects a corrupted object in its own region, deletes that temp file, and reads the other region', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const v = await pub.publish('dlto.big', { data: bytes });
    const bad = Buffer.from(bytes);
    bad[1_000_000] = (bad[1_000_000] as number) ^ 0xff; // same size, one byte flipped
    await overwrite(regionA, s3Key(v, regionA), bad);

    const d = outDir('corrupt');
    const target = join(d, 'payload.bin');
    const c = consumer();
    const failures: RegionFailure[] = [];
    c.on('region-failure', (f) => failures.push(f));
    const sources = new Set<string>();
    await c.downloadTo('dlto.big', v.version, target, { onProgress: (p) => sources.add(p.source) });
    expect(readFileSync(target).equals(bytes)).toBe(true);
    expect(readdirSync(d)).toEqual(['payload.bin']);
    expect([...sources]).toEqual([regionA, regionB]);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ region: regionA, reason: 'corrupt' });
    expect(failures[0]?.error.message).toMatch(/SHA-256 .* does not match/);

    // Corrupt in both regions too: DATA_LOSS, nothing at the path, no temp file left (the
    // consume service's ReadData fallback reads the same corrupt bytes and is refused as well).
    await overwrite(regionB, s3Key(v, regionB), bad);
    const target2 = join(d, 'again.bin');
    await expect(c.downloadTo('dlto.big', v.version, target2)).rejects.toMatchObject({ code: 'DATA_LOSS' });
    expect(existsSync(target2)).toBe(false);
    expect(readdirSync(d)).toEqual(['payload.bin']);
  });

  it('refuses a path in a directory that does not exist, naming the field', async () => {
    const v = await pub.publish('dlto.big', { data: randomBytes(4096) });
    await expect(consumer().downloadTo('dlto.big', v.version, join(out, 'no-such-dir', 'f'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'path' });
    await expect(consumer().downloadTo('dlto.big', v.version, '')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'path' });
  });

  it('decrypts an encrypted topic as it streams; without the key nothing is written', async () => {
    await pub.createTopic({ name: 'dlto.secret', inlineThresholdBytes: 1024, encryption: { keyId: 'big-2026' } });
    const plain = randomBytes(2 * 1024 * 1024 + 5);
    const v = await pub.publish('dlto.secret', { data: plain });
    expect(v.size).toBe(plain.length + 16); // the stored bytes are the ciphertext and its tag
    const d = outDir('secret');
    const progress: DownloadProgress[] = [];
    await consumer({ keyring: createLocalKeyring(ring) }).downloadTo('dlto.secret', v.version, join(d, 'plain.bin'), { onProgress: (p) => progress.push(p) });
    expect(readFileSync(join(d, 'plain.bin')).equals(plain)).toBe(true);
    expect(progress.at(-1)?.loaded).toBe(v.size);
    expect(readdirSync(d)).toEqual(['plain.bin']);

    await expect(consumer().downloadTo('dlto.secret', v.version, join(d, 'nokey.bin'))).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', field: 'keyring' });
    expect(readdirSync(d)).toEqual(['plain.bin']);
  });
});
