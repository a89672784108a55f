/**
 * Test helpers shared by the consume service's integration tests: write topics and
 * versions straight through the ports (no publish service needed), and wait for things.
 * Not exported from the package.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { BlobStore, MetadataStore, Scope, VersionRecord } from '@quire/core';
import { scopeKey } from '@quire/core';

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
