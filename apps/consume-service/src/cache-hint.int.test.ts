// `TopicCache.pollNow` (the change hints' wake-up, ADR 0009) on the real embedded store:
// with the timer's change poll a minute away, a wake-up reads the change feed at once;
// wake-ups during a read are coalesced into exactly one more read after it; a hint naming
// its topic reloads that topic directly, even while the change-feed read is stuck.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetadataStore } from '@quire/core';
import { systemClock } from '@quire/core';
import { TopicCache } from './cache.ts';
import { createStores, type Stores } from './app.ts';
import { createTopic, publishInline, until } from './testing.ts';

/** `store` counting its change-feed reads. */
function counting(store: MetadataStore): { store: MetadataStore; reads: { value: number } } {
  const reads = { value: 0 };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'changesSince') reads.value++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, reads };
}

describe('topic cache woken by a change hint', () => {
  let dir: string;
  let stores: Stores;
  let cache: TopicCache;
  let reads: { value: number };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quire-consume-hint-'));
    stores = await createStores({
      metadataStore: { kind: 'embedded', path: join(dir, 'quire.sqlite') },
      blobStore: { kind: 'fs', regions: [{ name: 'local', dir: join(dir, 'blobs') }] },
    });
    await createTopic(stores.store, 'hint.t');
    await publishInline(stores.store, 'hint.t', 'v1');
    const c = counting(stores.store);
    reads = c.reads;
    cache = new TopicCache({ store: c.store, clock: systemClock, refreshMs: 3_600_000, changePollMs: 60_000 });
  });
  afterAll(async () => {
    await cache?.stop();
    await stores?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reloads a hinted topic directly, while the change-feed read is blocked', async () => {
    // A second cache over the same store whose change-feed reads wait on a gate once closed.
    let open = true;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const blocked = { value: 0 };
    const gated = new Proxy(stores.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return async (...args: unknown[]) => {
          if (prop === 'changesSince' && !open) {
            blocked.value++;
            await gate;
          }
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    await createTopic(stores.store, 'hint.direct');
    await publishInline(stores.store, 'hint.direct', 'd1');
    const c2 = new TopicCache({ store: gated, clock: systemClock, refreshMs: 3_600_000, changePollMs: 60_000 });
    try {
      await c2.start();
      expect(c2.get('hint.direct')?.releases.map((r) => r.version)).toEqual([1]);
      open = false;
      const changed: string[] = [];
      c2.onChange((t) => changed.push(t));
      await publishInline(stores.store, 'hint.direct', 'd2');
      c2.hint('hint.direct');
      await until(() => changed.includes('hint.direct'), 5000, 'the hinted topic to reload');
      // Reloaded while the feed read it started is still waiting at the gate.
      expect(blocked.value).toBe(1);
      expect(c2.get('hint.direct')?.releases.map((r) => r.version).sort()).toEqual([1, 2]);
      // A hint naming no topic (a stream's "connected" message) only reads the feed.
      c2.hint('');
      expect(changed).toEqual(['hint.direct']);
    } finally {
      release();
      await c2.stop();
    }
  });

  it('does nothing before start, reads at once after, and coalesces wake-ups during a read', async () => {
    cache.pollNow();
    expect(reads.value).toBe(0);
    await cache.start();
    const afterStart = reads.value; // the starting cursor
    const changed: string[] = [];
    cache.onChange((t) => changed.push(t));
    await publishInline(stores.store, 'hint.t', 'v2');
    cache.pollNow(); // starts a read
    cache.pollNow(); // during it: one more read afterwards
    cache.pollNow(); // coalesced with the previous one
    expect(reads.value).toBe(afterStart + 1);
    await until(() => reads.value === afterStart + 2, 5000, 'the coalesced second read');
    await until(() => changed.includes('hint.t'), 5000, 'the topic to reload');
    expect(cache.get('hint.t')?.releases.map((r) => r.version).sort()).toEqual([1, 2]);
    // No third read: the timer's next one is a minute away.
    await new Promise((r) => setTimeout(r, 300));
    expect(reads.value).toBe(afterStart + 2);
  });
});
