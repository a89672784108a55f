// Resilience of the consume service layer against real stores: a held long-poll is woken
// when a version that failed its consistency check passes later (its upload landed after
// the commit), and one application cannot hold more long-polls than its limit while
// another application's polls are still served.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { storeBackends, type StoreBackendConfig } from '@quire/test-servers';
import { createConsumeCore, createStores, type ConsumeCore, type Stores } from './app.ts';
import { createTopic, publishS3, until } from './testing.ts';

const backends = storeBackends('resil', () => inject('quireServers'));

describe.each(backends)('consume service resilience on $name', (backend) => {
  let cfg: StoreBackendConfig;
  let mine: Stores;
  let other: Stores;
  let core: ConsumeCore;

  beforeAll(async () => {
    cfg = backend.config();
    mine = await createStores(cfg);
    other = await createStores(cfg);
    core = await createConsumeCore(mine.store, mine.blobs, {
      cacheRefreshMs: 60_000,
      changePollMs: 100,
      recheckMs: 300,
      fleetFlushMs: 60_000,
      limits: { maxHeld: 1 },
    });
  });
  afterAll(async () => {
    await core?.close();
    await other?.close();
    await mine?.close();
    cfg?.cleanup?.();
  });

  it('wakes a held long-poll when a version that failed its check becomes whole', async () => {
    const topic = 'resil.late-upload';
    await createTopic(other.store, topic);
    const v1 = await publishS3(other.store, other.blobs, topic, 'one');
    // v2 is committed before its object exists (an upload still landing).
    const v2 = await publishS3(other.store, other.blobs, topic, 'two', { upload: false });
    await until(() => (core.cache.get(topic)?.releases ?? []).some((r) => r.version === v2.version), 5000, 'v2 in the cache');
    const me = { instance: 'late-1', application: 'late', region: 'region-a' };
    // The consumer holds v1; v2 is not whole: "no update", so the poll is held.
    const held = core.service.poll({ identity: me, subscriptions: [{ topic, knownVersion: v1.version }], waitMs: 30_000 });
    await until(() => core.service.heldPolls === 1, 5000, 'the poll to be held');
    const first = await core.service.poll({ identity: { ...me, instance: 'late-2' }, subscriptions: [{ topic, knownVersion: v1.version }] });
    expect(first.updates).toEqual([]);
    // The object lands; nothing changes in the metadata store.
    const pointer = v2.pointer.kind === 's3' ? v2.pointer : undefined;
    await other.blobs.put(pointer?.locations[0]?.key as string, new TextEncoder().encode('two'));
    const started = Date.now();
    const answer = await held;
    expect(answer.updates.map((u) => u.version.version)).toEqual([v2.version]);
    console.log(`[fault] late upload (${backend.name}): held long-poll woken ${Date.now() - started} ms after the object landed (recheck 300 ms, wait 30 s)`);
  });

  it('refuses the long-polls of one application past its limit, and serves another application', async () => {
    const topic = 'resil.limits';
    await createTopic(other.store, topic);
    const v1 = await publishS3(other.store, other.blobs, topic, 'one');
    await until(() => (core.cache.get(topic)?.releases ?? []).some((r) => r.version === v1.version), 5000, 'v1 in the cache');
    const sub = [{ topic, knownVersion: v1.version }];
    const ctl = new AbortController();
    const heldA = core.service.poll({ identity: { instance: 'a-1', application: 'noisy' }, subscriptions: sub, waitMs: 30_000 }, ctl.signal);
    const refused = await core.service.poll({ identity: { instance: 'a-2', application: 'noisy' }, subscriptions: sub, waitMs: 30_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(QuireError);
    expect({ code: (refused as QuireError).code, field: (refused as QuireError).field }).toEqual({ code: Code.RESOURCE_EXHAUSTED, field: 'identity.application' });
    // Another application's long-poll is held (and answered), a short poll of the noisy one still works.
    const ctlB = new AbortController();
    const heldB = core.service.poll({ identity: { instance: 'b-1', application: 'quiet' }, subscriptions: sub, waitMs: 30_000 }, ctlB.signal);
    expect((await core.service.poll({ identity: { instance: 'a-3', application: 'noisy' }, subscriptions: [{ topic }] })).updates.map((u) => u.version.version)).toEqual([v1.version]);
    await until(() => core.service.heldPolls === 2, 5000, 'both polls held');
    ctl.abort();
    ctlB.abort();
    expect((await heldA).updates).toEqual([]);
    expect((await heldB).updates).toEqual([]);
    // Once released, the noisy application may hold one again.
    const again = new AbortController();
    const heldAgain = core.service.poll({ identity: { instance: 'a-4', application: 'noisy' }, subscriptions: sub, waitMs: 30_000 }, again.signal);
    await until(() => core.service.heldPolls === 1, 5000, 'the new poll held');
    again.abort();
    expect((await heldAgain).updates).toEqual([]);
  });

  it('a publish waking more held polls of one application than its queue holds answers every one of them', async () => {
    const topic = 'resil.wake-all';
    await createTopic(other.store, topic);
    const v1 = await publishS3(other.store, other.blobs, topic, 'one');
    // One application, 2 evaluations at once and 3 waiting: 30 held polls woken together
    // would overflow that queue ten times if a woken poll could be refused.
    const small = await createConsumeCore(mine.store, mine.blobs, {
      cacheRefreshMs: 60_000,
      changePollMs: 100,
      fleetFlushMs: 60_000,
      limits: { concurrency: 2, queue: 3, maxHeld: 100 },
    });
    try {
      await until(() => (small.cache.get(topic)?.releases ?? []).some((r) => r.version === v1.version), 5000, 'v1 in the cache');
      const held = Array.from({ length: 30 }, (_, i) =>
        small.service.poll({ identity: { instance: `w-${i}`, application: 'fleet' }, subscriptions: [{ topic, knownVersion: v1.version }], waitMs: 30_000 }),
      );
      await until(() => small.service.heldPolls === 30, 5000, 'the 30 polls to be held');
      const v2 = await publishS3(other.store, other.blobs, topic, 'two');
      const answers = await Promise.allSettled(held);
      const refused = answers.filter((a) => a.status === 'rejected').length;
      expect(refused).toBe(0);
      expect(answers.map((a) => (a.status === 'fulfilled' ? a.value.updates.map((u) => u.version.version) : []))).toEqual(Array.from({ length: 30 }, () => [v2.version]));
    } finally {
      await small.close();
    }
  });

  it('drain answers every held long-poll at once, each with a re-arm delay spread over the drain window', async () => {
    const topic = 'resil.drain';
    await createTopic(other.store, topic);
    const v1 = await publishS3(other.store, other.blobs, topic, 'one');
    const draining = await createConsumeCore(mine.store, mine.blobs, { cacheRefreshMs: 60_000, changePollMs: 100, fleetFlushMs: 60_000 });
    try {
      const held = Array.from({ length: 40 }, (_, i) =>
        draining.service.poll({ identity: { instance: `d-${i}`, application: `app-${i % 4}` }, subscriptions: [{ topic, knownVersion: v1.version }], waitMs: 60_000 }),
      );
      await until(() => draining.service.heldPolls === 40, 5000, 'the polls to be held');
      expect(draining.service.drain()).toBe(40);
      const answers = await Promise.all(held);
      expect(answers.every((a) => a.updates.length === 0)).toBe(true);
      const delays = answers.map((a) => a.nextPollMs);
      expect(delays.every((d) => d >= 1 && d <= 3000)).toBe(true);
      expect(new Set(delays).size).toBeGreaterThan(1);
      // A poll that arrives while draining is answered at once, with a delay too (state included).
      const late = await draining.service.poll({ identity: { instance: 'late', application: 'x' }, subscriptions: [{ topic }], waitMs: 60_000 });
      expect(late.updates.map((u) => u.version.version)).toEqual([v1.version]);
      expect(late.nextPollMs).toBeGreaterThanOrEqual(1);
    } finally {
      await draining.close();
    }
  });
});
