// The consistency checker's memory bounds, against the real embedded metadata store and a
// file blob store: inline payloads kept in memory are copies, bounded by bytes (least
// recently used out first, then read from the store again), and checks run a bounded
// number at once (the cold start's warm-up queues instead of reading everything at once).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock, type VersionRecord } from '@quire/core';
import { createStores, type Stores } from './app.ts';
import { ConsistencyChecker } from './consistency.ts';
import { createTopic, publishInline } from './testing.ts';

describe('consistency checker memory bounds', () => {
  let dir: string;
  let stores: Stores;
  const records: VersionRecord[] = [];
  const text = (i: number): string => `payload ${i} `.padEnd(1000, '.');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quire-consistency-'));
    stores = await createStores({
      metadataStore: { kind: 'embedded', path: join(dir, 'quire.sqlite') },
      blobStore: { kind: 'fs', regions: [{ name: 'local', dir: join(dir, 'blobs') }] },
    });
    for (let i = 0; i < 40; i++) {
      await createTopic(stores.store, `mem.t${i}`);
      records.push(await publishInline(stores.store, `mem.t${i}`, text(i)));
    }
  });
  afterAll(async () => {
    await stores?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps inline payloads as copies, within the byte bound, the most recent ones', async () => {
    const checker = new ConsistencyChecker({ store: stores.store, blobs: stores.blobs, clock: systemClock, inlineCacheTotalBytes: 5000 });
    for (const r of records.slice(0, 10)) expect(await checker.check(r, undefined)).toEqual({ ok: true });
    expect(checker.inlineBytes).toBeGreaterThan(0);
    expect(checker.inlineBytes).toBeLessThanOrEqual(5000);
    // 10 payloads of 1000 bytes do not fit in 5000: the first ones went, the last stayed.
    expect(checker.cachedInline('mem.t0', records[0]!.version)).toBeUndefined();
    const last = checker.cachedInline('mem.t9', records[9]!.version);
    expect(new TextDecoder().decode(last)).toBe(text(9));
    // A copy holding only its own bytes, not a view into a larger buffer.
    expect(last!.byteOffset).toBe(0);
    expect(last!.buffer.byteLength).toBe(last!.byteLength);
    // Pruning a topic's versions drops its payload too.
    checker.prune('mem.t9', new Set());
    expect(checker.cachedInline('mem.t9', records[9]!.version)).toBeUndefined();
  });

  it('runs at most `concurrency` checks at once; the others wait their turn and all pass', async () => {
    const checker = new ConsistencyChecker({ store: stores.store, blobs: stores.blobs, clock: systemClock, concurrency: 2 });
    const results = records.map((r) => checker.check(r, undefined));
    expect(checker.pending).toBe(records.length - 2);
    // Asking again for a queued check shares its promise (no second read).
    expect(checker.check(records.at(-1)!, undefined)).toBe(results.at(-1));
    expect((await Promise.all(results)).every((r) => r.ok)).toBe(true);
    expect(checker.pending).toBe(0);
  });
});
