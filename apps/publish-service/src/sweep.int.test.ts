// The orphan sweep against real blob stores (s3proxy's two regions, and the local
// directory): objects of publishes that never committed are deleted once older than the
// grace period; committed versions, young uploads and snapshots are never touched.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Clock } from '@quire/core';
import { storeBackends } from '@quire/test-servers';
import { createStores, type Stores } from './app.ts';
import { PublishService } from './service.ts';
import { OrphanSweeper } from './sweep.ts';

const backends = storeBackends('sweep', () => inject('quireServers'));

async function keys(stores: Stores, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const region of stores.blobs.regions) for await (const e of stores.blobs.list(prefix, region)) out.push(`${region}:${e.key}`);
  return out.sort();
}

describe.each(backends)('orphan sweep on $name', (backend) => {
  let stores: Stores;
  let service: PublishService;
  let cleanup: (() => void) | undefined;
  /** A clock `ahead` ms in the future: the sweep sees every object as that much older. */
  let ahead = 0;
  const clock: Clock = { now: () => Date.now() + ahead };

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

  it('deletes uncommitted objects past the grace period, and nothing else', async () => {
    await service.createTopic({ name: 'sweep.data', inlineThresholdBytes: 16 }, 'alice');
    const committed = await service.publish({ topic: 'sweep.data', data: randomBytes(4096), publisher: 'alice' });
    const pointer = committed.version.pointer;
    if (pointer.kind !== 's3') throw new Error('expected an s3 pointer');
    const committedKey = pointer.locations[0]?.key as string;
    // A publish that uploaded and then died before its commit: the same key shape, both regions.
    const orphanKey = 'topics/sweep.data/crashed-publish.1234abcd';
    await stores.blobs.put(orphanKey, randomBytes(2048));
    // An orphan of a topic that does not exist (any more).
    await stores.blobs.put('topics/sweep.gone/old-publish', randomBytes(100));
    // Outside topics/: never swept.
    await stores.blobs.put('snapshots/sweep.data.json', Buffer.from('{}'));
    await stores.blobs.put('external/registered-later.bin', randomBytes(100));
    const before = await keys(stores, '');

    const sweeper = new OrphanSweeper({ store: stores.store, blobs: stores.blobs, clock, graceMs: 60_000 });
    // Inside the grace period: nothing deleted, the orphans are counted as young.
    ahead = 0;
    const young = await sweeper.sweep();
    expect(young.deleted).toEqual([]);
    expect(young.young).toBe(2 * stores.blobs.regions.length);
    expect(young.failures).toEqual([]);
    expect(await keys(stores, '')).toEqual(before);

    // Past it: exactly the orphans go, in every region.
    ahead = 120_000;
    const swept = await sweeper.sweep();
    expect(swept.failures).toEqual([]);
    const expected = stores.blobs.regions.flatMap((r) => [`${r}:${orphanKey}`, `${r}:topics/sweep.gone/old-publish`]).sort();
    expect([...swept.deleted].sort()).toEqual(expected);
    expect(await keys(stores, '')).toEqual(before.filter((k) => !expected.includes(k)));
    // The committed version is whole and readable.
    for (const region of stores.blobs.regions) expect((await stores.blobs.head(committedKey, region))?.size).toBe(4096);
    const opened = await service.openData('sweep.data', committed.version.version);
    let size = 0;
    for await (const c of opened.body) size += (c as Buffer).byteLength;
    expect(size).toBe(4096);
    console.log(`[fault] orphan sweep (${backend.name}): ${swept.deleted.length} orphan objects deleted past a 60 s grace, 0 committed objects touched`);

    // A second pass has nothing left to do.
    expect((await sweeper.sweep()).deleted).toEqual([]);
  });

  it('leaves the objects of a deleted version to be swept, and keeps a live one', async () => {
    await service.createTopic({ name: 'sweep.retained', inlineThresholdBytes: 16, retention: { keepLast: 1 } }, 'alice');
    const v1 = await service.publish({ topic: 'sweep.retained', data: randomBytes(1000), publisher: 'alice' });
    const v2 = await service.publish({ topic: 'sweep.retained', data: randomBytes(1000), publisher: 'alice' });
    await stores.store.markVersionDeleted('sweep.retained', v1.version.version, Date.now());
    const key1 = v1.version.pointer.kind === 's3' ? (v1.version.pointer.locations[0]?.key as string) : '';
    const key2 = v2.version.pointer.kind === 's3' ? (v2.version.pointer.locations[0]?.key as string) : '';
    ahead = 120_000;
    const swept = await new OrphanSweeper({ store: stores.store, blobs: stores.blobs, clock, graceMs: 60_000 }).sweep();
    expect([...swept.deleted].sort()).toEqual(stores.blobs.regions.map((r) => `${r}:${key1}`).sort());
    for (const region of stores.blobs.regions) expect(await stores.blobs.head(key2, region)).toBeDefined();
  });
});
