// The service layer against real stores: the embedded SQLite store with a local blob
// directory (two "regions"), and Cassandra with two s3proxy regions. Each run gets its
// own keyspace, buckets and temp directory.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import type { BlobStore, MetadataStore } from '@quire/core';
import { storeBackends } from '@quire/test-servers';
import { createStores, type Stores } from './app.ts';
import { PublishService } from './service.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

const backends = storeBackends('publish', () => inject('quireServers'));

/** Expect `p` to reject with a QuireError of this code (and field). */
async function expectQuire(p: Promise<unknown>, code: Code, field?: string): Promise<QuireError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QuireError);
  const q = err as QuireError;
  expect({ code: q.code, field: q.field }).toEqual({ code, field });
  return q;
}

async function blobKeys(blobs: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (const region of blobs.regions) for await (const e of blobs.list(prefix, region)) keys.push(`${region}:${e.key}`);
  return keys;
}

async function readAllBytes(body: Uint8Array | Readable): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A store whose commits fail: the real store, with one method replaced. */
function failingCommits(store: MetadataStore): MetadataStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'commitVersion') return async () => Promise.reject(new QuireError(Code.UNAVAILABLE, 'metadata store down'));
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe.each(backends)('PublishService on $name', (backend) => {
  let stores: Stores;
  let service: PublishService;
  let cleanup: (() => void) | undefined;

  beforeAll(async () => {
    const cfg = backend.config();
    cleanup = cfg.cleanup;
    stores = await createStores(cfg);
    service = new PublishService({ store: stores.store, blobs: stores.blobs });
  });
  afterAll(async () => {
    await stores?.close();
    cleanup?.();
  });

  it('creates a topic and publishes inline', async () => {
    const topic = await service.createTopic({ name: 'svc.inline', description: 'd', inlineThresholdBytes: 1024 }, 'alice');
    expect(topic).toMatchObject({ name: 'svc.inline', owner: 'alice', revision: 1, headVersion: 0, inlineThresholdBytes: 1024 });
    const data = Buffer.from('{"hello":"world"}');
    const res = await service.publish({ topic: 'svc.inline', data, metadata: { source: 'test' }, contentType: 'application/json', publisher: 'alice' });
    expect(res.version).toMatchObject({ version: 1, size: data.length, sha256: sha(data), metadata: { source: 'test' }, pointer: { kind: 'inline' } });
    expect(res.releases).toMatchObject([{ scope: {}, scopeKey: '' }]);
    // A stream that ends under the threshold is inline too.
    const streamed = await service.publish({ topic: 'svc.inline', data: Readable.from([Buffer.from('ab'), Buffer.from('c')]), scopes: [{ cluster: 'x' }], publisher: 'bob' });
    expect(streamed.version).toMatchObject({ version: 2, size: 3, pointer: { kind: 'inline' } });
    expect(streamed.releases).toMatchObject([{ scope: { cluster: 'x' } }]);

    const opened = await service.openData('svc.inline', 1);
    expect((await readAllBytes(opened.body)).toString()).toBe(data.toString());
    expect((await service.getTopic('svc.inline')).headVersion).toBe(2);
    const audit = await service.listAudit({ topic: 'svc.inline' });
    expect(audit.items.map((e) => `${e.action}:${e.actor}`)).toEqual(['publish:bob', 'publish:alice', 'topic.create:alice']);
  });

  it('streams 5 MiB to the blob store in both regions', async () => {
    await service.createTopic({ name: 'svc.large' }, 'alice');
    const payload = randomBytes(5 * MiB);
    const chunks: Buffer[] = [];
    for (let at = 0; at < payload.length; at += 64 * 1024) chunks.push(payload.subarray(at, at + 64 * 1024));
    const res = await service.publish({ topic: 'svc.large', data: Readable.from(chunks), contentType: 'application/octet-stream', sha256: sha(payload), publisher: 'alice' });
    expect(res.version).toMatchObject({ version: 1, size: payload.length, sha256: sha(payload) });
    const pointer = res.version.pointer;
    if (pointer.kind !== 's3') throw new Error('expected an s3 pointer');
    expect(pointer.locations.map((l) => l.region).sort()).toEqual([...stores.blobs.regions].sort());
    for (const loc of pointer.locations) {
      expect(loc.key).toBe(`topics/svc.large/${res.version.publishId}`);
      expect((await stores.blobs.head(loc.key, loc.region))?.size).toBe(payload.length);
      const got = await stores.blobs.get(loc.key, { regions: [loc.region] });
      expect(sha(await readAllBytes(got.body))).toBe(sha(payload));
    }
    // One region only, when asked.
    const one = await service.publish({ topic: 'svc.large', data: payload.subarray(0, 2 * MiB), regions: [stores.blobs.regions[1]], publisher: 'alice' });
    expect(one.version.pointer).toMatchObject({ kind: 's3', locations: [{ region: stores.blobs.regions[1] }] });
  });

  it('registers an object already in the blob store', async () => {
    await service.createTopic({ name: 'svc.register' }, 'alice');
    const payload = randomBytes(MiB + 5);
    await stores.blobs.put('external/svc-register.bin', payload);
    const res = await service.registerExisting({ topic: 'svc.register', key: 'external/svc-register.bin', metadata: { origin: 'etl' }, publisher: 'carol' });
    expect(res.version).toMatchObject({ version: 1, size: payload.length, sha256: sha(payload), publisher: 'carol', metadata: { origin: 'etl' } });
    expect(res.version.pointer).toMatchObject({ kind: 's3' });
    // The same by explicit locations, with a checked checksum.
    const region = stores.blobs.regions[0] as string;
    const again = await service.registerExisting({
      topic: 'svc.register',
      locations: [{ region, bucket: stores.blobs.bucketOf(region), key: 'external/svc-register.bin' }],
      sha256: sha(payload),
      publisher: 'carol',
    });
    expect(again.version.version).toBe(2);
    await expectQuire(service.registerExisting({ topic: 'svc.register', key: 'external/svc-register.bin', sha256: sha(Buffer.from('x')), publisher: 'carol' }), Code.INVALID_ARGUMENT, 'sha256');
    await expectQuire(service.registerExisting({ topic: 'svc.register', key: 'external/missing.bin', publisher: 'carol' }), Code.NOT_FOUND, 'key');
    const [ra, rb] = stores.blobs.regions as [string, string];
    await expectQuire(
      service.registerExisting({
        topic: 'svc.register',
        locations: [
          { region: ra, key: 'external/svc-register.bin' },
          { region: rb, key: 'external/other-key.bin' },
        ],
        publisher: 'carol',
      }),
      Code.INVALID_ARGUMENT,
      'locations[1].key',
    );
    // A failed registration never deletes the caller's object.
    expect((await stores.blobs.head('external/svc-register.bin', region))?.size).toBe(payload.length);
    expect((await service.listVersions('svc.register')).items).toHaveLength(2);
  });

  it('rejects bad input and leaves nothing behind', async () => {
    await service.createTopic({ name: 'svc.bad', inlineThresholdBytes: 1024, jsonSchema: { type: 'object', required: ['id'] } }, 'alice');
    const big = randomBytes(2 * MiB);
    await expectQuire(service.publish({ topic: 'svc.nope', data: Buffer.from('x'), publisher: 'a' }), Code.NOT_FOUND, 'topic');
    await expectQuire(service.publish({ topic: 'svc.bad', data: Buffer.from('x'), metadata: { k: 5 }, publisher: 'a' }), Code.INVALID_ARGUMENT, 'metadata.k');
    await expectQuire(service.publish({ topic: 'svc.bad', data: Buffer.from('x'), scopes: [{ region: '' }], publisher: 'a' }), Code.INVALID_ARGUMENT, 'scopes[0].region');
    await expectQuire(service.publish({ topic: 'svc.bad', data: big, regions: ['nowhere'], publisher: 'a' }), Code.INVALID_ARGUMENT, 'regions[0]');
    await expectQuire(service.publish({ topic: 'svc.bad', data: Buffer.from('{}'), contentType: 'application/json', publisher: 'a' }), Code.INVALID_ARGUMENT, 'data');
    await expectQuire(service.publish({ topic: 'svc.bad', data: Buffer.from('{"id":1}'), sha256: 'XYZ', publisher: 'a' }), Code.INVALID_ARGUMENT, 'sha256');
    // Too large for one in-memory call (JSON or not).
    const small = new PublishService({ store: stores.store, blobs: stores.blobs, maxBufferedBytes: 64 * 1024 });
    const json = Buffer.from(JSON.stringify({ id: 1, pad: 'x'.repeat(128 * 1024) }));
    await expectQuire(small.publish({ topic: 'svc.bad', data: json, contentType: 'application/json', publisher: 'a' }), Code.RESOURCE_EXHAUSTED, 'data');
    await expectQuire(small.publish({ topic: 'svc.bad', data: Readable.from([json]), contentType: 'application/json', publisher: 'a' }), Code.RESOURCE_EXHAUSTED, 'data');

    // A checksum mismatch after the upload: no version, and the uploaded object is gone.
    await expectQuire(service.publish({ topic: 'svc.bad', data: Readable.from([big]), sha256: sha(Buffer.from('other')), publisher: 'a' }), Code.INVALID_ARGUMENT, 'sha256');
    await expectQuire(service.publish({ topic: 'svc.bad', data: big, size: big.length + 1, publisher: 'a' }), Code.INVALID_ARGUMENT, 'size');
    // A commit that fails: the uploaded object is deleted.
    const broken = new PublishService({ store: failingCommits(stores.store), blobs: stores.blobs });
    await expectQuire(broken.publish({ topic: 'svc.bad', data: big, publisher: 'a' }), Code.UNAVAILABLE);

    expect((await service.listVersions('svc.bad')).items).toHaveLength(0);
    expect(await blobKeys(stores.blobs, 'topics/svc.bad/')).toEqual([]);
    expect((await service.listAudit({ topic: 'svc.bad' })).items.map((e) => e.action)).toEqual(['topic.create']);
  });

  it('is idempotent on a publishId the caller chose', async () => {
    await service.createTopic({ name: 'svc.idem', inlineThresholdBytes: 16 }, 'alice');
    const payload = randomBytes(4096);
    const a = await service.publish({ topic: 'svc.idem', data: payload, publishId: 'job-7', publisher: 'a' });
    const b = await service.publish({ topic: 'svc.idem', data: payload, publishId: 'job-7', publisher: 'a' });
    expect(b.replayed).toBe(true);
    expect(b.version.version).toBe(a.version.version);
    await expectQuire(service.publish({ topic: 'svc.idem', data: randomBytes(4096), publishId: 'job-7', publisher: 'a' }), Code.ALREADY_EXISTS, 'publishId');
    // The committed object is intact and the retries' copies are gone.
    const opened = await service.openData('svc.idem', a.version.version);
    expect(sha(await readAllBytes(opened.body))).toBe(sha(payload));
    expect((await blobKeys(stores.blobs, 'topics/svc.idem/')).length).toBe(stores.blobs.regions.length);
    // A retry after the release was withdrawn does not bring it back.
    await stores.store.withdrawRelease('svc.idem', a.version.version, '', Date.now());
    const c = await service.publish({ topic: 'svc.idem', data: payload, publishId: 'job-7', publisher: 'a' });
    expect(c.replayed).toBe(true);
    expect(c.releases.map((r) => r.withdrawnAt !== undefined)).toEqual([true]);
    const active = (await stores.store.listReleases('svc.idem')).filter((r) => r.version === a.version.version && r.withdrawnAt === undefined);
    expect(active).toEqual([]);
  });

  it('gives concurrent publishes distinct, gapless versions', async () => {
    await service.createTopic({ name: 'svc.concurrent', inlineThresholdBytes: 64 }, 'alice');
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => service.publish({ topic: 'svc.concurrent', data: Buffer.from(`payload ${i} `.repeat(i % 2 === 0 ? 1 : 20)), publisher: `p${i}` })),
    );
    expect(results.map((r) => r.version.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await service.getTopic('svc.concurrent')).headVersion).toBe(6);
  });

  it('updates settings with compare-and-set and retries concurrent updates', async () => {
    await service.createTopic({ name: 'svc.update' }, 'alice');
    const [x, y] = await Promise.all([
      service.updateTopic('svc.update', { description: 'from x' }, 'x'),
      service.updateTopic('svc.update', { retention: { keepLast: 3 } }, 'y'),
    ]);
    expect([x.revision, y.revision].sort()).toEqual([2, 3]);
    const t = await service.getTopic('svc.update');
    expect(t).toMatchObject({ description: 'from x', retention: { keepLast: 3 }, revision: 3 });
    await expectQuire(service.updateTopic('svc.update', { description: 'late' }, 'z', 2), Code.FAILED_PRECONDITION, 'expectedRevision');
    await expectQuire(service.updateTopic('svc.update', { inlineThresholdBytes: -1 }, 'z'), Code.INVALID_ARGUMENT, 'inlineThresholdBytes');
    await expectQuire(service.updateTopic('svc.nope', { description: 'x' }, 'z'), Code.NOT_FOUND, 'name');
    const cleared = await service.updateTopic('svc.update', { retention: null, jsonSchema: { type: 'object' } }, 'z', 3);
    expect(cleared).toMatchObject({ retention: {}, revision: 4 });
    expect(cleared.jsonSchema).toBe('{"type":"object"}');
  });

  it('releases older versions to more scopes', async () => {
    await service.createTopic({ name: 'svc.release' }, 'alice');
    await service.publish({ topic: 'svc.release', data: Buffer.from('1'), scopes: [{ cluster: 'canary' }], publisher: 'a' });
    const rel = await service.release('svc.release', 1, [{ region: 'eu' }, {}], 'ops', 'widen');
    expect(rel.map((r) => r.scopeKey)).toEqual(['region=eu', '']);
    expect((await service.getVersion('svc.release', 1)).releases).toHaveLength(3);
    await expectQuire(service.release('svc.release', 2, [], 'ops'), Code.NOT_FOUND, 'version');
    await expectQuire(service.release('svc.release', 1, [{ a: 1 }], 'ops'), Code.INVALID_ARGUMENT, 'scopes[0].a');
    const audit = await service.listAudit({ topic: 'svc.release', limit: 1 });
    expect(audit.items[0]).toMatchObject({ action: 'release', actor: 'ops', reason: 'widen' });
  });
});
