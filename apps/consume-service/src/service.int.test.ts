// The consume service layer against real stores: the embedded SQLite store with a local
// blob directory (two "regions"), and Cassandra with two s3proxy regions. Versions are
// written straight through the ports by a SECOND store instance (as another process would),
// so the service only learns about them through the change feed / refresh.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { storeBackends, type StoreBackendConfig } from '@quire/test-servers';
import { createConsumeCore, createStores, type ConsumeCore, type Stores } from './app.ts';
import type { PollInput } from './service.ts';
import { createTopic, publishInline, publishS3, release, until } from './testing.ts';

const backends = storeBackends('consume', () => inject('quireServers'));

async function expectQuire(p: Promise<unknown>, code: Code, field?: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QuireError);
  expect({ code: (err as QuireError).code, field: (err as QuireError).field }).toEqual({ code, field });
}

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

describe.each(backends)('consume service on $name', (backend) => {
  let cfg: StoreBackendConfig;
  /** The service's own store instance. */
  let mine: Stores;
  /** Another store instance: the "publisher" (another process / replica). */
  let other: Stores;
  let core: ConsumeCore;
  let n = 0;
  const topicName = (what: string) => `t${++n}.${what}`;

  beforeAll(async () => {
    cfg = backend.config();
    mine = await createStores(cfg);
    other = await createStores(cfg);
    // A long full-refresh period: prompt updates must come from the change feed.
    core = await createConsumeCore(mine.store, mine.blobs, { cacheRefreshMs: 60_000, changePollMs: 100, recheckMs: 300, fleetFlushMs: 60_000 });
  });
  afterAll(async () => {
    await core?.close();
    await other?.close();
    await mine?.close();
    cfg?.cleanup?.();
  });

  const seen = (topic: string, version: number) =>
    until(() => (core.cache.get(topic)?.releases ?? []).some((r) => r.version === version), 5000, `${topic} v${version} in the cache`);
  const poll = (input: PollInput) => core.service.poll(input);
  const me = { instance: 'i-1', region: 'region-b', application: 'checkout', cluster: 'checkout-main' };

  it('a batched poll answers only the topics that changed, with inline bytes; unknown topics are errors', async () => {
    const [a, b, c] = [topicName('a'), topicName('b'), topicName('c')];
    for (const t of [a, b, c]) await createTopic(other.store, t);
    await publishInline(other.store, a, 'a1');
    const b1 = await publishInline(other.store, b, 'b1');
    await publishInline(other.store, c, 'c1');
    const c2 = await publishInline(other.store, c, 'c2');
    await seen(c, c2.version);
    await seen(a, 1);
    await seen(b, 1);

    const r = await poll({
      identity: me,
      subscriptions: [
        { topic: a, knownVersion: 0 },
        { topic: b, knownVersion: b1.version },
        { topic: c, knownVersion: 1 },
        { topic: 'no.such-topic', knownVersion: 0 },
      ],
    });
    expect(r.updates.map((u) => [u.topic, u.version.version, u.via, text(u.inlineData)])).toEqual([
      [a, 1, 'release', 'a1'],
      [c, 2, 'release', 'c2'],
    ]);
    expect(r.errors).toEqual([{ topic: 'no.such-topic', code: Code.NOT_FOUND, message: expect.stringContaining('not found') }]);
    expect(r.stale).toBe(false);
    expect(r.updates[0]?.version.scopes).toEqual([{}]);
  });

  it('scoped releases: two identities see different latest versions; one 3 versions behind jumps to the newest', async () => {
    const t = topicName('scoped');
    await createTopic(other.store, t);
    for (let i = 1; i <= 4; i++) await publishInline(other.store, t, `v${i}`);
    const canary = await publishInline(other.store, t, 'v5-canary', { scopes: [{ cluster: 'checkout-canary' }] });
    await seen(t, canary.version);
    const main = await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: 1 }] });
    const can = await poll({ identity: { ...me, instance: 'i-2', cluster: 'checkout-canary' }, subscriptions: [{ topic: t, knownVersion: 1 }] });
    expect(main.updates.map((u) => [u.version.version, text(u.inlineData)])).toEqual([[4, 'v4']]);
    expect(can.updates.map((u) => [u.version.version, text(u.inlineData)])).toEqual([[5, 'v5-canary']]);
    // A pin (rollback) to an older version is an update too, marked as such.
    await other.store.putPin({ topic: t, pinId: 'pin-1', scope: {}, scopeKey: '', version: 2, reason: 'bad v4', pinnedBy: 'ops', pinnedAt: Date.now() });
    await until(() => (core.cache.get(t)?.pins.length ?? 0) > 0, 5000, 'the pin');
    const pinned = await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: 4 }] });
    expect(pinned.updates.map((u) => [u.version.version, u.via])).toEqual([[2, 'pin']]);
  });

  it('a long-poll returns promptly after a commit made by another store instance (change feed)', async () => {
    const t = topicName('long');
    await createTopic(other.store, t);
    await publishInline(other.store, t, 'one');
    await seen(t, 1);
    const started = Date.now();
    const held = poll({ identity: me, subscriptions: [{ topic: t, knownVersion: 1 }], waitMs: 20_000 });
    await until(() => core.service.heldPolls > 0, 2000, 'the poll to be held');
    // A release that does not apply to this consumer keeps it waiting.
    await publishInline(other.store, t, 'two-elsewhere', { scopes: [{ cluster: 'somewhere-else' }] });
    await seen(t, 2);
    await new Promise((r) => setTimeout(r, 150));
    expect(core.service.heldPolls).toBe(1);
    const committedAt = Date.now();
    await release(other.store, t, 2, [{ cluster: me.cluster }]);
    const r = await held;
    const latency = Date.now() - committedAt;
    console.log(`[consume-service] ${backend.name}: long-poll answered ${latency} ms after the release committed (held ${Date.now() - started} ms)`);
    expect(r.updates.map((u) => u.version.version)).toEqual([2]);
    expect(latency).toBeLessThan(3000);
  });

  it('a long-poll with nothing new ends at waitMs with no update; an aborted one ends at once', async () => {
    const t = topicName('quiet');
    await createTopic(other.store, t);
    await publishInline(other.store, t, 'one');
    await seen(t, 1);
    const t0 = Date.now();
    const r = await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: 1 }], waitMs: 400 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(380);
    expect(r.updates).toEqual([]);
    const ac = new AbortController();
    const held = core.service.poll({ identity: me, subscriptions: [{ topic: t, knownVersion: 1 }], waitMs: 30_000 }, ac.signal);
    ac.abort();
    expect((await held).updates).toEqual([]);
    expect(core.service.heldPolls).toBe(0);
  });

  it('consistency: an S3 version whose object is missing goes to nobody who has data; a fresh consumer gets the newest whole one', async () => {
    const t = topicName('s3');
    await createTopic(other.store, t);
    const good = await publishS3(other.store, other.blobs, t, 'whole');
    const broken = await publishS3(other.store, other.blobs, t, 'missing', { upload: false });
    await seen(t, broken.version);
    const has = await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: good.version }] });
    expect(has.updates).toEqual([]);
    const fresh = await poll({ identity: { ...me, instance: 'i-3' }, subscriptions: [{ topic: t, knownVersion: 0 }] });
    expect(fresh.updates.map((u) => u.version.version)).toEqual([good.version]);
    const u = fresh.updates[0];
    expect(u?.inlineData).toBeUndefined();
    expect(u?.version.pointer.kind === 's3' && u.version.pointer.locations.map((l) => l.region)).toEqual(['region-b', 'region-a']);
    // The object lands later: after the re-check backoff the version is handed out.
    const key = broken.pointer.kind === 's3' ? (broken.pointer.locations[0]?.key as string) : '';
    await other.blobs.put(key, new TextEncoder().encode('missing'));
    await new Promise((r) => setTimeout(r, 350));
    const later = await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: good.version }] });
    expect(later.updates.map((x) => x.version.version)).toEqual([broken.version]);
  });

  it('consistency: inline bytes with a wrong checksum are never handed out', async () => {
    const t = topicName('corrupt');
    await createTopic(other.store, t);
    const good = await publishInline(other.store, t, 'fine');
    const bad = await publishInline(other.store, t, 'corrupt', { checksum: 'f'.repeat(64) });
    await seen(t, bad.version);
    expect((await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: good.version }] })).updates).toEqual([]);
    const fresh = await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: 0 }] });
    expect(fresh.updates.map((u) => [u.version.version, text(u.inlineData)])).toEqual([[good.version, 'fine']]);
  });

  it('bad input is refused with the field named', async () => {
    const sub = [{ topic: 'x.y', knownVersion: 0 }];
    await expectQuire(poll({ identity: { region: 'eu' }, subscriptions: sub }), Code.INVALID_ARGUMENT, 'identity.instance');
    await expectQuire(poll({ identity: me, subscriptions: sub, waitMs: 60_001 }), Code.INVALID_ARGUMENT, 'waitMs');
    await expectQuire(poll({ identity: me, subscriptions: [] }), Code.INVALID_ARGUMENT, 'subscriptions');
    const many = Array.from({ length: 501 }, (_, i) => ({ topic: `many.t${i}` }));
    await expectQuire(poll({ identity: me, subscriptions: many }), Code.RESOURCE_EXHAUSTED, 'subscriptions');
    await expectQuire(poll({ identity: me, subscriptions: [{ topic: '' }] }), Code.INVALID_ARGUMENT, 'subscriptions[0].topic');
    await expectQuire(poll({ identity: me, subscriptions: [{ topic: 'a.b', knownVersion: -1 }] }), Code.INVALID_ARGUMENT, 'subscriptions[0].knownVersion');
    await expectQuire(core.service.getVersion('no.such-topic', 1), Code.NOT_FOUND, 'topic');
  });

  it('history: get, list, version at a time, inline read; fleet reports are aggregated and flushed', async () => {
    const t = topicName('history');
    await createTopic(other.store, t);
    const v1 = await publishInline(other.store, t, 'first');
    await new Promise((r) => setTimeout(r, 20));
    const between = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    await publishInline(other.store, t, 'second');
    await seen(t, 2);
    expect((await core.service.getVersion(t, 2)).metadata).toEqual({ text: 'second' });
    await expectQuire(core.service.getVersion(t, 9), Code.NOT_FOUND, 'version');
    const page = await core.service.listVersions(t, { limit: 1 });
    expect(page.items.map((v) => v.version)).toEqual([2]);
    const rest = await core.service.listVersions(t, { limit: 1, cursor: page.next });
    expect(rest.items.map((v) => v.version)).toEqual([1]);
    expect((await core.service.versionAt(t, between, me)).version).toBe(v1.version);
    expect((await core.service.versionAt(t, Date.now(), me)).version).toBe(2);
    await expectQuire(core.service.versionAt(t, 1000, me), Code.NOT_FOUND, 'at');
    const data = await core.service.readInline(t, 1);
    expect([text(data.data), data.sha256]).toEqual(['first', v1.sha256]);

    await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: 2, appliedVersion: 2 }] });
    await poll({ identity: { ...me, instance: 'i-9' }, subscriptions: [{ topic: t, knownVersion: 1, failedVersion: 2, error: 'decode failed' }] });
    await poll({ identity: me, subscriptions: [{ topic: t, knownVersion: 2, appliedVersion: 2 }] });
    await core.service.flushFleetReports();
    const reports = await other.store.listFleetReports(t);
    expect(reports.map((r) => [r.instance, r.version, r.failedVersion, r.error]).sort()).toEqual([
      ['i-1', 2, undefined, undefined],
      ['i-9', 1, 2, 'decode failed'],
    ]);
  });
});
