// The topic cache when the metadata store goes away: polls keep being answered from the
// cache, flagged `stale`, and the flag clears once a refresh succeeds again. The store is
// the real embedded one behind a switch that makes every call fail with UNAVAILABLE (as
// the adapters do when the database cannot be reached).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import type { MetadataStore } from '@quire/core';
import { createConsumeCore, createStores, type ConsumeCore, type Stores } from './app.ts';
import { createTopic, publishInline, until } from './testing.ts';

/** `store` with an off switch. */
function switchable(store: MetadataStore): { store: MetadataStore; down: { value: boolean } } {
  const down = { value: false };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (down.value && prop !== 'close') return Promise.reject(new QuireError(Code.UNAVAILABLE, 'store unreachable (test switch)'));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, down };
}

describe('topic cache with the store down', () => {
  let dir: string;
  let stores: Stores;
  let core: ConsumeCore;
  let down: { value: boolean };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quire-consume-cache-'));
    stores = await createStores({
      metadataStore: { kind: 'embedded', path: join(dir, 'quire.sqlite') },
      blobStore: { kind: 'fs', regions: [{ name: 'local', dir: join(dir, 'blobs') }] },
    });
    await createTopic(stores.store, 'cache.t');
    await publishInline(stores.store, 'cache.t', 'hello');
    const s = switchable(stores.store);
    down = s.down;
    core = await createConsumeCore(s.store, stores.blobs, { cacheRefreshMs: 150, changePollMs: 50 });
  });
  afterAll(async () => {
    await core?.close();
    await stores?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers polls from the cache, says it is stale, and recovers', async () => {
    const req = { identity: { instance: 'i' }, subscriptions: [{ topic: 'cache.t', knownVersion: 0 }] };
    expect(core.cache.health().stale).toBe(false);
    // Warm the consistency check while the store is up.
    expect((await core.service.poll(req)).updates.map((u) => u.version.version)).toEqual([1]);
    down.value = true;
    await until(() => core.cache.health().stale, 3000, 'the cache to turn stale');
    const r = await core.service.poll(req);
    expect(r.stale).toBe(true);
    expect(r.updates.map((u) => [u.version.version, new TextDecoder().decode(u.inlineData)])).toEqual([[1, 'hello']]);
    down.value = false;
    await until(() => !core.cache.health().stale, 3000, 'the cache to be fresh again');
    expect((await core.service.poll(req)).stale).toBe(false);
  });
});
