// Operator controls end to end on both backends (embedded SQLite + local directory, and
// Cassandra + two s3proxy regions): the publish service writes scopes, pins, rollbacks and
// retention deletions; a real consume service core, on ANOTHER store instance (as another
// process would be), answers the consumers' (long-)polls from its change-fed cache.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Code, QuireError, newRun } from '@quire/core';
import type { ConsumerIdentity, VersionRecord } from '@quire/core';
import { createConsumeCore, type ConsumeCore } from '@quire/consume-service';
import { storeBackends, type StoreBackendConfig } from '@quire/test-servers';
import { createStores, type Stores } from './app.ts';
import { PublishService, RETENTION_ACTOR } from './service.ts';

const backends = storeBackends('operator', () => inject('quireServers'));

async function expectQuire(p: Promise<unknown>, code: Code, field?: string): Promise<QuireError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QuireError);
  const q = err as QuireError;
  expect({ code: q.code, field: q.field }).toEqual({ code, field });
  return q;
}

async function until(fn: () => Promise<boolean> | boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const canary: ConsumerIdentity = { instance: 'c-1', application: 'checkout', cluster: 'canary', region: 'region-a' };
const main: ConsumerIdentity = { instance: 'm-1', application: 'checkout', cluster: 'main', region: 'region-b' };
const legacy: ConsumerIdentity = { instance: 'l-1', application: 'checkout', cluster: 'legacy', region: 'region-a' };

describe.each(backends)('operator controls on $name', (backend) => {
  let cfg: StoreBackendConfig;
  /** The publish service's stores. */
  let pub: Stores;
  /** The consume service's own store instance. */
  let con: Stores;
  let service: PublishService;
  let core: ConsumeCore;
  let n = 0;
  const topicName = (what: string) => `op${++n}.${what}`;

  beforeAll(async () => {
    cfg = backend.config();
    pub = await createStores(cfg);
    con = await createStores(cfg);
    service = new PublishService({ store: pub.store, blobs: pub.blobs });
    // A long full-refresh period: prompt updates must come from the change feed.
    core = await createConsumeCore(con.store, con.blobs, { cacheRefreshMs: 60_000, changePollMs: 100, recheckMs: 300, fleetFlushMs: 60_000 });
  });
  afterAll(async () => {
    await core?.close();
    await con?.close();
    await pub?.close();
    cfg?.cleanup?.();
  });

  /** The version the consume service hands this consumer now (0 = none), and how. */
  async function served(topic: string, identity: ConsumerIdentity): Promise<{ version: number; via?: string }> {
    const r = await core.service.poll({ identity, subscriptions: [{ topic, knownVersion: 0 }] });
    const u = r.updates[0];
    return u === undefined ? { version: 0 } : { version: u.version.version, via: u.via };
  }
  /** Wait until the consume service hands `identity` version `v` (its cache follows the change feed). */
  const servedEventually = (topic: string, identity: ConsumerIdentity, v: number) =>
    until(async () => (await served(topic, identity)).version === v, 5000, `${identity.cluster} to get ${topic} v${v}`);

  const publish = async (topic: string, text: string, scopes?: object[]): Promise<VersionRecord> =>
    (await service.publish({ topic, data: Buffer.from(text), ...(scopes === undefined ? {} : { scopes }), publisher: 'pub' })).version;

  it('consumers in different scopes see different latest versions; releasing an old version to a scope moves its consumers', async () => {
    const t = topicName('scopes');
    await service.createTopic({ name: t }, 'ops');
    await publish(t, 'one');
    await publish(t, 'two', [{ cluster: 'canary' }]);
    await publish(t, 'three', [{ cluster: 'canary' }]);
    await servedEventually(t, canary, 3);
    expect(await served(t, main)).toEqual({ version: 1, via: 'release' });

    // Version 2 is old (canary already runs 3): releasing it to main moves main, not canary.
    await service.release(t, 2, [{ cluster: 'main' }], 'ops', 'main is ready for 2');
    await servedEventually(t, main, 2);
    expect((await served(t, canary)).version).toBe(3);
    const scopes = await service.listReleases(t, 2);
    expect(scopes.map((r) => r.scope)).toEqual([{ cluster: 'canary' }, { cluster: 'main' }]);
    expect(await served(t, legacy)).toEqual({ version: 1, via: 'release' });
  });

  it('pin → a held long-poll returns the pinned version; publish while pinned is hidden; unpin → newest; rollback → last fully rolled out', async () => {
    const t = topicName('pins');
    await service.createTopic({ name: t }, 'ops');
    for (const text of ['one', 'two', 'three']) await publish(t, text);
    await servedEventually(t, main, 3);
    await servedEventually(t, canary, 3);

    // A consumer long-polling with 3 gets the pinned 1 promptly.
    const held = core.service.poll({ identity: main, subscriptions: [{ topic: t, knownVersion: 3 }], waitMs: 20_000 });
    await until(() => core.service.heldPolls > 0, 2000, 'the poll to be held');
    const pinnedAt = Date.now();
    const pin = await service.pin({ topic: t, version: 1, reason: 'bad rows in 3' }, 'ops');
    const r = await held;
    const latency = Date.now() - pinnedAt;
    console.log(`[operator] ${backend.name}: long-poll answered ${latency} ms after the pin`);
    expect(r.updates.map((u) => [u.version.version, u.via])).toEqual([[1, 'pin']]);
    expect(latency).toBeLessThan(3000);
    expect(pin).toMatchObject({ version: 1, scope: {}, reason: 'bad rows in 3', pinnedBy: 'ops' });

    // Published while pinned: hidden from the pinned consumers (all of them: a global pin).
    await publish(t, 'four');
    await until(() => (core.cache.get(t)?.releases ?? []).some((x) => x.version === 4), 5000, 'v4 in the cache');
    const quiet = await core.service.poll({ identity: main, subscriptions: [{ topic: t, knownVersion: 1 }], waitMs: 300 });
    expect(quiet.updates).toEqual([]);
    expect(await served(t, canary)).toEqual({ version: 1, via: 'pin' });

    // Unpin → the newest version.
    const ended = await service.unpin({ topic: t, reason: 'fixed' }, 'ops');
    expect(ended).toMatchObject({ pinId: pin.pinId, unpinnedBy: 'ops' });
    await servedEventually(t, main, 4);
    expect(await service.listPins(t)).toEqual([]);
    expect(await service.listPins(t, { history: true })).toHaveLength(1);

    // 5 reached canary only (a stalled rollout); 6 reached canary and main. Rolling back
    // everyone skips 5 (never fully rolled out) and pins 4.
    await publish(t, 'five', [{ cluster: 'canary' }]);
    await publish(t, 'six', [{ cluster: 'canary' }, { cluster: 'main' }]);
    await servedEventually(t, main, 6);
    await servedEventually(t, canary, 6);
    const rolled = await service.rollback({ topic: t, reason: 'six is bad' }, 'ops');
    expect(rolled).toMatchObject({ from: 6, pin: { version: 4, scope: {}, reason: 'six is bad' } });
    await servedEventually(t, main, 4);
    await servedEventually(t, canary, 4);
    // Rolling back within canary alone, after unpinning: canary's previous version 5 reached canary.
    await service.unpin({ topic: t }, 'ops');
    const scoped = await service.rollback({ topic: t, scope: { cluster: 'canary' }, reason: 'six is bad in canary' }, 'ops');
    expect(scoped).toMatchObject({ from: 6, pin: { version: 5, scope: { cluster: 'canary' } } });
    await servedEventually(t, canary, 5);
    expect((await served(t, main)).version).toBe(6);

    const audit = await service.listAudit({ topic: t, actor: 'ops' });
    expect(audit.items.map((e) => e.action)).toEqual(['rollback', 'unpin', 'rollback', 'unpin', 'pin', 'topic.create']);
    expect(audit.items[2]).toMatchObject({ reason: 'six is bad', details: { from: 6, version: 4, scope: {} } });
    // Filtered pages: one entry at a time, following the cursor.
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await service.listAudit({ topic: t, action: 'rollback', limit: 1, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...page.items.map((e) => String(e.details.version)));
      cursor = page.next;
    } while (cursor !== undefined);
    expect(seen).toEqual(['5', '4']);
  });

  it('retention deletes exactly the unprotected old versions and their objects in every region', async () => {
    const t = topicName('retention');
    await service.createTopic({ name: t, inlineThresholdBytes: 16 }, 'ops');
    const versions: VersionRecord[] = [];
    for (let i = 1; i <= 6; i++) versions.push(await publish(t, `payload number ${i} `.repeat(8)));
    // Protected: 2 pinned (for legacy), 3 latest for cluster=legacy-b, 5 inside an active run, 6 latest globally.
    await service.pin({ topic: t, version: 2, scope: { cluster: 'legacy' }, reason: 'legacy stays on 2' }, 'ops');
    await service.release(t, 3, [{ cluster: 'legacy-b' }], 'ops');
    await pub.store.createRun(newRun({ topic: t, runId: 'run-5', version: 5, plan: { stages: [{ scope: {}, bakeMs: 0 }] }, startedBy: 'ops', now: Date.now() }));
    await service.updateTopic(t, { retention: { keepLast: 1 } }, 'ops');

    const res = await service.runRetention(t);
    expect(res).toEqual({ topic: t, deleted: [1, 4], orphaned: [] });

    const keyOf = (v: VersionRecord) => {
      if (v.pointer.kind !== 's3') throw new Error('expected an S3 version');
      return v.pointer.locations;
    };
    for (const v of versions) {
      const locations = keyOf(v);
      expect(locations.map((l) => l.region).sort()).toEqual([...pub.blobs.regions].sort());
      for (const loc of locations) {
        const head = await pub.blobs.head(loc.key, loc.region);
        if ([1, 4].includes(v.version)) expect(head, `v${v.version} in ${loc.region}`).toBeUndefined();
        else expect(head?.size, `v${v.version} in ${loc.region}`).toBe(v.size);
      }
    }
    const after = (await service.listVersions(t, { order: 'asc' })).items;
    expect(after.map((v) => [v.version, v.deletedAt !== undefined])).toEqual([
      [1, true],
      [2, false],
      [3, false],
      [4, true],
      [5, false],
      [6, false],
    ]);
    // Consumers are unaffected: legacy keeps its pinned 2, the rest get 6.
    await servedEventually(t, legacy, 2);
    expect((await served(t, main)).version).toBe(6);
    const audit = await service.listAudit({ topic: t, action: 'version.delete' });
    // (Both in the same millisecond, possibly: compare as a set.)
    expect(audit.items.map((e) => [e.actor, e.details.version, e.details.by]).sort()).toEqual([
      [RETENTION_ACTOR, 1, 'retention'],
      [RETENTION_ACTOR, 4, 'retention'],
    ]);
    // Nothing left to do; the scheduler's sweep over every topic agrees.
    expect((await service.runRetention(t)).deleted).toEqual([]);
    const all = await service.runRetentionAll();
    expect(all.failures).toEqual([]);
    expect(all.results.filter((x) => x.topic === t)).toEqual([]);

    // An operator's delete of a protected version is refused; of an unprotected one, done.
    await expectQuire(service.deleteVersion(t, 2, 'cleanup', 'ops'), Code.FAILED_PRECONDITION, 'version');
    await expectQuire(service.deleteVersion(t, 5, 'cleanup', 'ops'), Code.FAILED_PRECONDITION, 'version');
    await service.unpin({ topic: t, scope: { cluster: 'legacy' } }, 'ops');
    const deleted = await service.deleteVersion(t, 2, 'legacy is gone', 'ops');
    expect(deleted.deletedAt).toBeGreaterThan(0);
    for (const loc of keyOf(versions[1] as VersionRecord)) expect(await pub.blobs.head(loc.key, loc.region)).toBeUndefined();
    await expectQuire(service.pin({ topic: t, version: 2, reason: 'x' }, 'ops'), Code.FAILED_PRECONDITION, 'version');
  });

  it('a version whose objects cannot be deleted is still marked deleted (an orphan for the sweep), never left visible without data', async () => {
    const t = topicName('orphan');
    await service.createTopic({ name: t, inlineThresholdBytes: 16, retention: { keepLast: 1 } }, 'ops');
    const first = await publish(t, 'a payload above the threshold');
    await publish(t, 'another payload above the threshold');
    // The real blob store, with deletes failing (S3 down).
    const broken = new Proxy(pub.blobs, {
      get(target, prop, receiver) {
        if (prop === 'delete') return async () => Promise.reject(new QuireError(Code.UNAVAILABLE, 's3 down'));
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const s3Down = new PublishService({ store: pub.store, blobs: broken });
    expect(await s3Down.runRetention(t)).toEqual({ topic: t, deleted: [1], orphaned: [1] });
    expect((await pub.store.getVersion(t, 1))?.deletedAt).toBeGreaterThan(0);
    if (first.pointer.kind !== 's3') throw new Error('expected an S3 version');
    for (const loc of first.pointer.locations) expect(await pub.blobs.head(loc.key, loc.region)).toBeDefined();
    const audit = await service.listAudit({ topic: t, action: 'version.delete' });
    expect(audit.items.map((e) => e.details)).toMatchObject([{ version: 1, objectsDeleted: false }]);
  });

  it('refuses bad operator input with the field named, and changes nothing', async () => {
    const t = topicName('bad');
    await service.createTopic({ name: t, retention: { keepLast: 3 } }, 'ops');
    await publish(t, 'only');
    const snapshot = async () => ({
      topic: await pub.store.getTopic(t),
      versions: (await pub.store.listVersions(t, { limit: 1000 })).items,
      releases: await pub.store.listReleases(t),
      pins: await pub.store.listPins(t),
      audit: (await pub.store.listAudit({ topic: t, limit: 1000 })).items,
    });
    const before = await snapshot();

    await expectQuire(service.pin({ topic: t, version: 7, reason: 'x' }, 'ops'), Code.NOT_FOUND, 'version');
    await expectQuire(service.pin({ topic: t, version: 1, reason: '' }, 'ops'), Code.INVALID_ARGUMENT, 'reason');
    await expectQuire(service.pin({ topic: t, version: 1 } as never, 'ops'), Code.INVALID_ARGUMENT, 'reason');
    await expectQuire(service.pin({ topic: t, version: 1, scope: { cluster: '' }, reason: 'x' }, 'ops'), Code.INVALID_ARGUMENT, 'scope.cluster');
    await expectQuire(service.pin({ topic: 'op.nope', version: 1, reason: 'x' }, 'ops'), Code.NOT_FOUND, 'topic');
    await expectQuire(service.unpin({ topic: t, reason: 'x' }, 'ops'), Code.NOT_FOUND, 'scope');
    await expectQuire(service.unpin({ topic: t, scope: { cluster: 'canary' } }, 'ops'), Code.NOT_FOUND, 'scope');
    await expectQuire(service.updateTopic(t, { retention: { keepLast: -1 } }, 'ops'), Code.INVALID_ARGUMENT, 'retention.keepLast');
    await expectQuire(service.updateTopic(t, { retention: { maxAgeMs: -5 } }, 'ops'), Code.INVALID_ARGUMENT, 'retention.maxAgeMs');
    await expectQuire(service.createTopic({ name: topicName('neg'), retention: { keepLast: 0 } }, 'ops'), Code.INVALID_ARGUMENT, 'retention.keepLast');
    const q = await expectQuire(service.rollback({ topic: t, reason: 'x' }, 'ops'), Code.FAILED_PRECONDITION, 'scope');
    expect(q.message).toMatch(/nothing to roll back to/);
    await expectQuire(service.rollback({ topic: t } as never, 'ops'), Code.INVALID_ARGUMENT, 'reason');
    await expectQuire(service.deleteVersion(t, 1, 'x', 'ops'), Code.FAILED_PRECONDITION, 'version');
    await expectQuire(service.deleteVersion(t, 1, undefined, 'ops'), Code.INVALID_ARGUMENT, 'reason');
    await expectQuire(service.listReleases(t, 9), Code.NOT_FOUND, 'version');
    await expectQuire(service.listAudit({ topic: t, actor: 'ops', cursor: 'not-a-cursor' }), Code.INVALID_ARGUMENT, 'cursor');

    expect(await snapshot()).toEqual(before);
    await servedEventually(t, main, 1);
  });
});
