/**
 * Test helpers shared by the consume service's tests: write topics and versions straight
 * through the ports (no publish service needed), wait for things, and run the service over
 * in-memory stand-ins.
 * Not exported from the package.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { BlobStore, MetadataStore, Release, Scope, VersionRecord } from '@quire/core';
import { scopeKey, systemClock } from '@quire/core';
import type { TopicCache, TopicState } from './cache.ts';
import type { ConsistencyChecker } from './consistency.ts';
import { ConsumeService } from './service.ts';

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export async function createTopic(store: MetadataStore, name: string): Promise<void> {
  const now = Date.now();
  await store.createTopic({
    name,
    owner: 'tests',
    description: '',
    retention: {},
    inlineThresholdBytes: 1024 * 1024,
    createdAt: now,
    updatedAt: now,
    revision: 1,
  });
}

export async function release(store: MetadataStore, topic: string, version: number, scopes: readonly Scope[] = [{}]): Promise<void> {
  for (const scope of scopes) {
    await store.putRelease({ topic, version, scope, scopeKey: scopeKey(scope), releasedAt: Date.now(), releasedBy: 'tests' });
  }
}

/** Commit an inline version and release it. `checksum` overrides the recorded SHA-256 (a corrupt version). */
export async function publishInline(
  store: MetadataStore,
  topic: string,
  text: string,
  options: { scopes?: Scope[]; checksum?: string } = {},
): Promise<VersionRecord> {
  const bytes = new TextEncoder().encode(text);
  const v = await store.commitVersion(
    {
      topic,
      publishId: randomUUID(),
      createdAt: Date.now(),
      publisher: 'tests',
      metadata: { text },
      contentType: 'text/plain',
      size: bytes.byteLength,
      sha256: options.checksum ?? sha256(bytes),
      pointer: { kind: 'inline', blobId: randomUUID() },
    },
    bytes,
  );
  await release(store, topic, v.version, options.scopes ?? [{}]);
  return v;
}

/** Commit an S3-pointer version (uploaded to every region unless `upload` is false) and release it. */
export async function publishS3(
  store: MetadataStore,
  blobs: BlobStore,
  topic: string,
  text: string,
  options: { scopes?: Scope[]; upload?: boolean } = {},
): Promise<VersionRecord> {
  const bytes = new TextEncoder().encode(text);
  const key = `tests/${topic}/${randomUUID()}`;
  const locations =
    options.upload === false
      ? blobs.regions.map((region) => ({ region, bucket: blobs.bucketOf(region), key }))
      : (await blobs.put(key, bytes, { contentType: 'text/plain' })).locations;
  const v = await store.commitVersion({
    topic,
    publishId: randomUUID(),
    createdAt: Date.now(),
    publisher: 'tests',
    metadata: { text },
    contentType: 'text/plain',
    size: bytes.byteLength,
    sha256: sha256(bytes),
    pointer: { kind: 's3', locations },
  });
  await release(store, topic, v.version, options.scopes ?? [{}]);
  return v;
}

/** Resolve when `fn()` is truthy; fail after `timeoutMs`. */
export async function until(fn: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A topic's cached state holding one inline version, released everywhere: for unit tests
 * that run the consume service over in-memory stand-ins (`memoryConsumeService`).
 */
export function oneVersionState(name: string, version: number, metadata: Record<string, string> = {}): TopicState {
  const releases: Release[] = [{ topic: name, version, scope: {}, scopeKey: scopeKey({}), releasedAt: version, releasedBy: 't' }];
  const record: VersionRecord = {
    topic: name,
    version,
    publishId: `p${version}`,
    createdAt: version,
    publisher: 't',
    metadata,
    contentType: 'text/plain',
    size: 5,
    sha256: '0'.repeat(64),
    pointer: { kind: 'inline', blobId: `b${version}` },
  };
  return {
    topic: { name, owner: 't', description: '', retention: {}, inlineThresholdBytes: 1024, createdAt: 1, updatedAt: 1, revision: 1 },
    releases,
    pins: [],
    versions: new Map([[version, record]]),
    resolution: { releases, pins: [], deleted: new Map() },
    stamp: String(version),
    settled: true,
    loadedAt: 1,
  };
}

/**
 * The consume service over in-memory stand-ins: a cache serving `states` (set a new state,
 * then `change(topic)` as the real cache would announce it) and a checker that passes every
 * version and hands out `inline` as every inline payload.
 */
export function memoryConsumeService(
  states: Map<string, TopicState>,
  inline = 'hello',
  onError?: (err: unknown, what: string) => void,
): { service: ConsumeService; cache: TopicCache; change: (topic: string) => void } {
  let changed: (topic: string) => void = () => {};
  const cache = {
    get: (t: string) => states.get(t),
    onChange: (listener: (topic: string) => void) => {
      changed = listener;
      return () => {};
    },
    stale: false,
  } as unknown as TopicCache;
  const checker = {
    recheckMs: 5000,
    check: async () => ({ ok: true }),
    inlineData: async () => new TextEncoder().encode(inline),
    prune: () => {},
    recheckFailed: async () => new Set<string>(),
  } as unknown as ConsistencyChecker;
  const service = new ConsumeService({ cache, checker, store: {} as MetadataStore, blobs: {} as BlobStore, clock: systemClock, fleetFlushMs: 3_600_000, ...(onError === undefined ? {} : { onError }) });
  return { service, cache, change: (topic) => changed(topic) };
}
