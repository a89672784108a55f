// An encrypted topic end to end on the production adapters: the publish and consume
// services as separate processes on a real Cassandra (own keyspace) and two s3proxy
// regions. The bytes the services store (S3 objects, the metadata store's inline bytes)
// are ciphertext; a consumer with the key reads the plaintext, one without it gets a clear
// error naming the key id; the services verify the ciphertext's checksum without the key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENCRYPTION_METADATA, isQuireError } from '@quire/core';
import { createStores, loadConfig } from '@quire/publish-service';
import { startQuireProcess, quireTestStores, type QuireProcess } from '@quire/test-servers';
import { until } from './testing.ts';
import { addKeyringKey, createConsumer, createLocalKeyring, createPublisher, type Consumer, type Publisher } from './index.ts';

const { cassandra, s3 } = inject('quireServers');
const testStores = quireTestStores({ cassandra, s3 }, 'enc');
const { regions } = testStores;
const env = {
  ...testStores.env,
  QUIRE_LOG_LEVEL: 'warn',
};
const s3Options = Object.fromEntries(s3.regions.map((r) => [r.name, { endpoint: r.endpoint, accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, forcePathStyle: true }]));

const TOPIC = 'enc.payments';
const SMALL = 'card-bin-table: top secret inline payload';
const MARKER = 'TOP-SECRET-MARKER';
const LARGE = Buffer.from(`${MARKER} `.repeat(20_000)); // ~360 KiB: above the 64 KiB inline threshold → S3

let dir: string;
let publishProc: QuireProcess;
let consumeProc: QuireProcess;
let pub: Publisher;
const consumers: Consumer[] = [];
let goodRing: string;
let otherRing: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-enc-'));
  goodRing = join(dir, 'keyring.json');
  otherRing = join(dir, 'other-keyring.json');
  await addKeyringKey(goodRing, 'payments-2026');
  await addKeyringKey(otherRing, 'search-2026');
  publishProc = await startQuireProcess('publish-service', { ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' });
  consumeProc = await startQuireProcess('consume-service', { ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0', QUIRE_CACHE_REFRESH_MS: '200' });
  pub = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'enc-test', consumeEndpoint: consumeProc.grpcAddress, keyring: createLocalKeyring(goodRing) });
}, 120_000);

afterAll(async () => {
  for (const c of consumers) await c.close();
  pub?.close();
  const codes = await Promise.all([publishProc?.stop(), consumeProc?.stop()]);
  rmSync(dir, { recursive: true, force: true });
  expect(codes).toEqual([0, 0]);
});

function consumer(keyring?: string): Consumer {
  const c = createConsumer({
    endpoints: [consumeProc.grpcAddress],
    identity: { application: 'billing', instance: `i-${consumers.length}` },
    longPoll: { waitMs: 5000 },
    s3: s3Options,
    ...(keyring === undefined ? {} : { keyring: createLocalKeyring(keyring) }),
  });
  consumers.push(c);
  return c;
}

describe('encrypted topic (aes-256-gcm envelope encryption)', () => {
  let v1: number;
  let v2: number;

  it('the services store ciphertext only: in S3 and in the metadata store', async () => {
    const t = await pub.createTopic({ name: TOPIC, owner: 'payments', inlineThresholdBytes: 65_536, encryption: { keyId: 'payments-2026' } });
    expect(t.encryption).toEqual({ algorithm: 'aes-256-gcm', keyId: 'payments-2026' });

    const small = await pub.publish(TOPIC, { data: SMALL, contentType: 'text/plain', metadata: { source: 'test' } });
    const file = join(dir, 'large.bin');
    writeFileSync(file, LARGE);
    const large = await pub.publish(TOPIC, { file, contentType: 'application/octet-stream' });
    v1 = small.version;
    v2 = large.version;
    expect(small.pointer.kind).toBe('inline');
    expect(large.pointer.kind).toBe('s3');
    // Size and checksum are the ciphertext's (plaintext + 16-byte tag); the header is in the descriptor.
    expect(small.size).toBe(SMALL.length + 16);
    expect(large.size).toBe(LARGE.length + 16);
    expect(small.metadata).toMatchObject({ source: 'test', [ENCRYPTION_METADATA.algorithm]: 'aes-256-gcm', [ENCRYPTION_METADATA.keyId]: 'payments-2026' });
    expect(small.metadata[ENCRYPTION_METADATA.wrappedKey]).toMatch(/^[A-Za-z0-9+/]+=*$/);

    // The metadata store's inline bytes.
    const stores = await createStores(loadConfig(env));
    try {
      const record = await stores.store.getVersion(TOPIC, v1);
      const inline = await stores.store.getInlineData(TOPIC, (record?.pointer as { blobId: string }).blobId);
      expect(inline?.byteLength).toBe(SMALL.length + 16);
      expect(Buffer.from(inline!).includes(Buffer.from('top secret'))).toBe(false);
    } finally {
      await stores.close();
    }
    // The S3 objects, in both regions.
    for (const loc of (large.pointer as { locations: Array<{ region: string; bucket: string; key: string }> }).locations) {
      const r = regions.find((x) => x.name === loc.region)!;
      const client = new S3Client({ region: 'us-east-1', endpoint: r.endpoint, forcePathStyle: true, credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } });
      const obj = await client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }));
      const bytes = Buffer.from(await obj.Body!.transformToByteArray());
      client.destroy();
      expect(bytes.length).toBe(LARGE.length + 16);
      expect(bytes.includes(Buffer.from(MARKER))).toBe(false);
    }
  });

  it('a consumer with the key reads the plaintext, by subscription and by download', async () => {
    const c = consumer(goodRing);
    const sub = c.subscribe(TOPIC, { decode: (b) => Buffer.from(b).toString('utf8') });
    await c.ready();
    // The consume service hands out v2 once it has seen it and checked its S3 objects; until
    // then the first answer may be v1. Either way the subscription ends on v2, decrypted.
    await until(() => sub.current() === LARGE.toString('utf8'), 'the subscription to hold v2');
    expect(Buffer.from(await c.download(TOPIC, v1)).toString('utf8')).toBe(SMALL);
    expect(Buffer.from(await c.download(TOPIC, v2)).equals(LARGE)).toBe(true);
  });

  it('a consumer without the key gets a clear error naming the key id', async () => {
    for (const ring of [undefined, otherRing]) {
      const c = consumer(ring);
      const err = await c.download(TOPIC, v1).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isQuireError(err, 'FAILED_PRECONDITION')).toBe(true);
      expect((err as Error).message).toMatch(/encrypted with key "payments-2026"/);
      // A subscription does not apply it either: its error names the key.
      const sub = c.subscribe(TOPIC, { decode: (b) => Buffer.from(b).toString('utf8'), defaultValue: 'none' });
      const failed = new Promise<Error>((resolve) => sub.on('error', (e: Error) => resolve(e)));
      c.start();
      expect((await failed).message).toMatch(/payments-2026/);
      expect(sub.current()).toBe('none');
    }
  });

  it('the service refuses a plaintext publish to the encrypted topic, and reserved metadata on a plain one', async () => {
    const plain = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'enc-test' });
    try {
      const err = await plain.publish(TOPIC, { data: 'oops, plaintext' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isQuireError(err, 'FAILED_PRECONDITION')).toBe(true);
      expect((err as Error).message).toMatch(/encrypted.*payments-2026/);
      await plain.createTopic({ name: 'enc.plain', owner: 'x' });
      const bad = await plain.publish('enc.plain', { data: 'x', metadata: { [ENCRYPTION_METADATA.algorithm]: 'aes-256-gcm' } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isQuireError(bad, 'INVALID_ARGUMENT')).toBe(true);
    } finally {
      plain.close();
    }
    // A publisher whose keyring lacks the key stops before sending anything.
    const wrong = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'enc-test', keyring: createLocalKeyring(otherRing) });
    try {
      await expect(wrong.publish(TOPIC, { data: 'x' })).rejects.toThrow(/payments-2026/);
    } finally {
      wrong.close();
    }
  });
});
