// The REST poll route's shared answers (fastify inject, in-memory stand-ins for the cache
// and the checker): polls given the same shared answer get byte-identical JSON, whether
// they come first, while the first is being serialized, or later; that JSON is what the
// route's own validation and serialization produce.
import { describe, expect, it } from 'vitest';
import { scopeKey, systemClock } from '@quire/core';
import type { BlobStore, MetadataStore, Release, VersionRecord } from '@quire/core';
import type { TopicCache, TopicState } from './cache.ts';
import type { ConsistencyChecker } from './consistency.ts';
import { createRestServer } from './rest.ts';
import { ConsumeService } from './service.ts';

function topicState(name: string, version: number): TopicState {
  const releases: Release[] = [{ topic: name, version, scope: {}, scopeKey: scopeKey({}), releasedAt: 1, releasedBy: 't' }];
  const record: VersionRecord = {
    topic: name,
    version,
    publishId: 'p',
    createdAt: 1,
    publisher: 't',
    metadata: { note: 'x' },
    contentType: 'text/plain',
    size: 5,
    sha256: '0'.repeat(64),
    pointer: { kind: 'inline', blobId: 'b' },
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

describe('REST poll answers', () => {
  it('shared answers: the same JSON for every poll, equal to the route serialization of a fresh answer', async () => {
    const states = new Map([['t.hot', topicState('t.hot', 2)]]);
    const cache = { get: (t: string) => states.get(t), onChange: () => () => {}, stale: false } as unknown as TopicCache;
    const checker = {
      recheckMs: 5000,
      check: async () => ({ ok: true }),
      inlineData: async () => new TextEncoder().encode('hello'),
      prune: () => {},
      recheckFailed: async () => new Set<string>(),
    } as unknown as ConsistencyChecker;
    const service = new ConsumeService({ cache, checker, store: {} as MetadataStore, blobs: {} as BlobStore, clock: systemClock, fleetFlushMs: 3_600_000 });
    const app = await createRestServer(service, cache);
    try {
      const poll = (instance: string, knownVersion: number, extra: object[] = []) =>
        app.inject({ method: 'POST', url: '/v1/poll', payload: { identity: { instance }, subscriptions: [{ topic: 't.hot', knownVersion }, ...extra] } });
      // One update, no error: shared. Five polls at once (the first serializes, the others wait for it), then one more.
      const together = await Promise.all([1, 2, 3, 4, 5].map((i) => poll(`i-${i}`, 1)));
      const later = await poll('i-6', 0);
      const bodies = [...together, later].map((r) => [r.statusCode, r.headers['content-type'], r.body]);
      expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
      const answer = JSON.parse(later.body) as { updates: Array<{ topic: string; inlineData: string; version: { version: number; metadata: unknown } }>; errors: unknown[] };
      expect(answer.updates.map((u) => [u.topic, u.version.version, Buffer.from(u.inlineData, 'base64').toString(), u.version.metadata])).toEqual([['t.hot', 2, 'hello', { note: 'x' }]]);
      expect(answer.errors).toEqual([]);
      // Not shared (an error besides the update): serialized for this poll, same update JSON.
      const fresh = JSON.parse((await poll('i-7', 1, [{ topic: 'no.such' }])).body) as typeof answer;
      expect(fresh.updates).toEqual(answer.updates);
      expect(fresh.errors).toEqual([expect.objectContaining({ topic: 'no.such', code: 'NOT_FOUND' })]);
      // Nothing new: the shared no-change answer.
      const quiet = await Promise.all([poll('i-8', 2), poll('i-9', 2)]);
      expect(quiet.map((r) => JSON.parse(r.body))).toEqual([
        { updates: [], errors: [], nextPollMs: 0, stale: false },
        { updates: [], errors: [], nextPollMs: 0, stale: false },
      ]);
    } finally {
      await app.close();
      await service.close();
    }
  });
});
