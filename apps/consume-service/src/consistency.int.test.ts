// The consistency checker's memory bounds, against the real embedded metadata store and a
// file blob store: inline payloads are kept in memory only for topics polled, as copies,
// bounded by bytes (least recently used out first), and checks run a bounded
// number at once (the cold start's warm-up queues instead of reading everything at once).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock, type VersionRecord } from '@quire/core';
import { createStores, type Stores } from './app.ts';
import { ConsistencyChecker } from './consistency.ts';
import { createTopic, publishInline } from './testing.ts';

describe('consistency checker memory bounds', () => {
  let dir: string;
  let stores: Stores;
  const records: VersionRecord[] = [];
  const text = (i: number): string => `payload ${i} `.padEnd(1000, '.');
  /** Counts the real store's inline reads (the calls go through). */
  const countInlineReads = () => {
    const spy = vi.spyOn(stores.store, 'getInlineData');
    return {
      get count() {
        return spy.mock.calls.length;
      },
      restore: () => spy.mockRestore(),
    };
  };

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

  it('keeps no bytes of a topic nobody polled; the first poll reads and keeps them, later versions are kept when checked', async () => {
    const checker = new ConsistencyChecker({ store: stores.store, blobs: stores.blobs, clock: systemClock });
    const first = records[0]!;
    expect(await checker.check(first, undefined)).toEqual({ ok: true });
    expect(checker.inlineBytes).toBe(0);
    // The first polls read the store once between them and keep the bytes.
    const reads = countInlineReads();
    const [a, b] = await Promise.all([checker.inlineData(first), checker.inlineData(first)]);
    expect(new TextDecoder().decode(a)).toBe(text(0));
    expect(b).toBe(a);
    expect(reads.count).toBe(1);
    expect(checker.inlineBytes).toBeGreaterThan(0);
    const cached = (await checker.inlineData(first))!;
    expect(reads.count).toBe(1);
    expect(new TextDecoder().decode(cached)).toBe(text(0));
    // A copy holding only its own bytes, not a view into a larger buffer.
    expect(cached.byteOffset).toBe(0);
    expect(cached.buffer.byteLength).toBe(cached.byteLength);
    reads.restore();
    // The topic is polled now: its next version's bytes are kept by the check itself.
    const next = await publishInline(stores.store, 'mem.t0', 'next');
    expect(await checker.check(next, undefined)).toEqual({ ok: true });
    const after = countInlineReads();
    expect(new TextDecoder().decode(await checker.inlineData(next))).toBe('next');
    expect(after.count).toBe(0);
    after.restore();
    // Pruning a topic's versions drops their bytes too.
    checker.prune('mem.t0', new Set());
    expect(checker.inlineBytes).toBe(0);
  });

  it('keeps no bytes of a version whose check has not passed', async () => {
    const checker = new ConsistencyChecker({ store: stores.store, blobs: stores.blobs, clock: systemClock });
    const unchecked = records[11]!;
    expect(new TextDecoder().decode(await checker.inlineData(unchecked))).toBe(text(11));
    expect(checker.inlineBytes).toBe(0);
  });

  it('keeps inline payloads within the byte bound, the most recently used', async () => {
    const checker = new ConsistencyChecker({ store: stores.store, blobs: stores.blobs, clock: systemClock, inlineCacheTotalBytes: 5000 });
    for (const r of records.slice(1, 11)) {
      expect(await checker.check(r, undefined)).toEqual({ ok: true });
      await checker.inlineData(r);
      expect(checker.inlineBytes).toBeLessThanOrEqual(5000);
    }
    // 10 payloads of 1000 bytes do not fit in 5000: the first ones went, the last stayed.
    const reads = countInlineReads();
    expect(new TextDecoder().decode(await checker.inlineData(records[10]!))).toBe(text(10));
    expect(reads.count).toBe(0);
    expect(new TextDecoder().decode(await checker.inlineData(records[1]!))).toBe(text(1));
    expect(reads.count).toBe(1);
    reads.restore();
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
