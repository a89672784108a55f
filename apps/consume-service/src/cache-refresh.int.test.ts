// The topic cache's full refresh reloads only the topics whose state stamp moved
// (docs/adr/0008-topic-state-stamps.md). Runs against the real embedded store; a proxy
// counts the per-topic reads (`listReleases` is read once per topic reload).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { candidateVersions, resolveVersion, scopeKey, systemClock } from '@quire/core';
import type { ConsumerIdentity, MetadataStore } from '@quire/core';
import { createStores, type Stores } from './app.ts';
import { TopicCache } from './cache.ts';
import { createTopic, publishInline } from './testing.ts';

/** `store` counting each topic's reloads (its `listReleases` reads). */
function counting(store: MetadataStore): { store: MetadataStore; reloads: Map<string, number> } {
  const reloads = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'listReleases') reloads.set(String(args[0]), (reloads.get(String(args[0])) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, reloads };
}

const TOPICS = ['r.a', 'r.b', 'r.c', 'r.d'];

describe('topic cache full refresh by state stamps', () => {
  let dir: string;
  let stores: Stores;
  let raw: MetadataStore;
  let store: MetadataStore;
  let reloads: Map<string, number>;
  let cache: TopicCache;
  let woken: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quire-consume-refresh-'));
    stores = await createStores({
      metadataStore: { kind: 'embedded', path: join(dir, 'quire.sqlite') },
      blobStore: { kind: 'fs', regions: [{ name: 'local', dir: join(dir, 'blobs') }] },
    });
    raw = stores.store;
    for (const t of TOPICS) {
      await createTopic(raw, t);
      await publishInline(raw, t, `${t} v1`);
    }
    ({ store, reloads } = counting(raw));
    // Not started: the test drives refresh() itself (no timers, no change feed).
    cache = new TopicCache({ store, clock: systemClock, sweepEvery: 0 });
    cache.onChange((t) => woken.push(t));
    await cache.refresh();
  });
  afterAll(async () => {
    await cache?.stop();
    await stores?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    reloads.clear();
    woken = [];
  });

  it('a refresh with nothing changed reloads no topic (the cold load is not repeated)', async () => {
    expect(cache.size).toBe(TOPICS.length);
    await cache.refresh();
    expect([...reloads]).toEqual([]);
    expect(woken).toEqual([]);
  });

  it('a release reloads that topic only (and once more to settle), and wakes only it', async () => {
    const v2 = await publishInline(raw, 'r.b', 'r.b v2');
    await cache.refresh();
    expect([...reloads]).toEqual([['r.b', 1]]);
    expect(woken).toEqual(['r.b']);
    expect(cache.get('r.b')?.releases.map((r) => r.version)).toContain(v2.version);
    await cache.refresh(); // the settling reload: same state, nobody woken
    expect([...reloads]).toEqual([['r.b', 2]]);
    expect(woken).toEqual(['r.b']);
    await cache.refresh();
    expect([...reloads]).toEqual([['r.b', 2]]);
  });

  it('a write consumers cannot see (a commit not released) reloads the topic but wakes nobody', async () => {
    const before = cache.get('r.c');
    await raw.commitVersion({
      topic: 'r.c',
      publishId: `p-${Date.now()}`,
      createdAt: Date.now(),
      publisher: 'tests',
      metadata: {},
      contentType: 'text/plain',
      size: 0,
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      pointer: { kind: 'inline', blobId: `b-${Date.now()}` },
    }, new Uint8Array());
    await cache.refresh();
    expect(reloads.get('r.c')).toBe(1);
    expect(woken).toEqual([]);
    expect(cache.get('r.c')).toBe(before); // the same state object: no garbage per reload
  });

  it('a change-feed reload records no stamp, so the next full refresh re-reads that topic', async () => {
    await raw.withdrawRelease('r.d', 1, scopeKey({}), Date.now());
    await cache.refreshTopic('r.d');
    expect(woken).toEqual(['r.d']);
    expect(cache.get('r.d')?.stamp).toBeUndefined();
    await cache.refresh();
    expect(reloads.get('r.d')).toBe(2);
    await cache.refresh(); // its stamp moved since the last recorded one: reloaded once more
    expect(reloads.get('r.d')).toBe(3);
    await cache.refresh();
    expect(reloads.get('r.d')).toBe(3);
    expect(woken).toEqual(['r.d']);
  });

  it('a new topic is loaded, and with sweepEvery every topic is re-read within that many refreshes', async () => {
    await createTopic(raw, 'r.e');
    await cache.refresh();
    expect(cache.get('r.e')?.topic.name).toBe('r.e');
    expect([...reloads]).toEqual([['r.e', 1]]); // a first load is settled: not reloaded again
    const sweeping = new TopicCache({ store, clock: systemClock, sweepEvery: 2 });
    await sweeping.refresh();
    await sweeping.refresh();
    reloads.clear();
    await sweeping.refresh();
    await sweeping.refresh();
    expect([...reloads.keys()].sort()).toEqual([...TOPICS, 'r.e'].sort());
    expect([...reloads.values()].every((n) => n === 1)).toBe(true);
    await sweeping.stop();
  });

  it('keeps only the active releases and pins: a withdrawn release and a removed pin leave the cache, every decision about now unchanged', async () => {
    await createTopic(raw, 'r.f');
    for (const text of ['v1', 'v2', 'v3']) await publishInline(raw, 'r.f', text);
    // Explicit times after v3's release: at released3 the history has v3 released and no pin.
    const released3 = (await raw.listReleases('r.f')).find((r) => r.version === 3)?.releasedAt ?? 0;
    await raw.putPin({ topic: 'r.f', pinId: 'pin-f', scope: {}, scopeKey: scopeKey({}), version: 1, reason: 'test', pinnedBy: 'ops', pinnedAt: released3 + 10 });
    await raw.removePin('r.f', scopeKey({}), released3 + 20, 'ops');
    await raw.withdrawRelease('r.f', 3, scopeKey({}), released3 + 30);
    await cache.refresh();
    const state = cache.get('r.f');
    expect(state?.releases.map((r) => r.version).sort()).toEqual([1, 2]);
    expect(state?.pins).toEqual([]);
    expect([...(state?.versions.keys() ?? [])].sort()).toEqual([1, 2]);
    // The store keeps the history ("at time T" reads it there)...
    const [releases, pins] = [await raw.listReleases('r.f'), await raw.listPins('r.f')];
    expect([releases.length, pins.length]).toEqual([3, 1]);
    // ...and the cached state decides now as the whole history does.
    const identities: ConsumerIdentity[] = [{ instance: 'i' }, { instance: 'i', region: 'local', application: 'app' }];
    for (const identity of identities) {
      expect(resolveVersion(state?.resolution ?? { releases: [], pins: [] }, identity)).toEqual(resolveVersion({ releases, pins }, identity));
      expect(candidateVersions(state?.resolution ?? { releases: [], pins: [] }, identity)).toEqual(candidateVersions({ releases, pins }, identity));
    }
    // At a past time the whole history answers otherwise (v3 was released then): that is why it stays in the store.
    expect(resolveVersion({ releases, pins }, { instance: 'i' }, released3)?.version).toBe(3);
  });
});
