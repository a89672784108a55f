// Staged rollouts against real stores (embedded + local directory, Cassandra + two s3proxy
// regions): the publish service layer, the rollout service and a running scheduler (short
// ticks) in this process, and a real consume app on the same stores whose `service.poll`
// answers what each consumer gets. Fallback snapshots are checked against the same polls.
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Code, QuireError, resolutionStateFromSnapshot, resolveVersion, snapshotKey } from '@quire/core';
import type { AuditEntry, RolloutPlan, RolloutRun, TopicSnapshot } from '@quire/core';
import { createConsumeApp, type ConsumeApp } from '@quire/consume-service';
import { storeBackends, type StoreBackendConfig } from '@quire/test-servers';
import { createStores, type Stores } from './app.ts';
import { RolloutService } from './rollouts.ts';
import { Scheduler } from './scheduler.ts';
import { PublishService } from './service.ts';
import { SnapshotWriter } from './snapshots.ts';

const backends = storeBackends('rollout', () => inject('quireServers'));

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

async function until<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const canary = { application: 'shop', cluster: 'canary', region: 'eu', instance: 'c-1' };
const euMain = { application: 'shop', cluster: 'main', region: 'eu', instance: 'e-1' };
const usMain = { application: 'shop', cluster: 'main', region: 'us', instance: 'u-1' };
const threeStages = (bakeMs: number): RolloutPlan => ({
  stages: [
    { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
    { name: 'eu', scope: { region: 'eu' }, bakeMs },
    { name: 'global', scope: {}, bakeMs },
  ],
});

describe.each(backends)('rollouts on $name', (backend) => {
  let cfg: StoreBackendConfig;
  let stores: Stores;
  let service: PublishService;
  let rollouts: RolloutService;
  let snapshots: SnapshotWriter;
  let scheduler: Scheduler;
  let consume: ConsumeApp;
  let n = 0;
  const topicName = (what: string) => `ro${++n}.${what}`;

  beforeAll(async () => {
    cfg = backend.config();
    stores = await createStores(cfg);
    rollouts = new RolloutService({ store: stores.store });
    service = new PublishService({ store: stores.store, blobs: stores.blobs, onPublished: (r, actor) => rollouts.startForPublish(r.topic, r.version, actor) });
    snapshots = new SnapshotWriter({ store: stores.store, blobs: stores.blobs });
    scheduler = new Scheduler({ store: stores.store, rollouts, snapshots, replicaId: 'test-replica', tickMs: 50, leaseTtlMs: 3000, onError: (err, what) => console.error(what, err) });
    scheduler.start();
    consume = await createConsumeApp({
      metadataStore: cfg.metadataStore,
      blobStore: cfg.blobStore,
      host: '127.0.0.1',
      logLevel: 'silent',
      httpPort: 0,
      grpcPort: 0,
      cacheRefreshMs: 1000,
      changePollMs: 30,
      fleetFlushMs: 60_000,
    });
  });
  afterAll(async () => {
    await scheduler?.stop();
    await consume?.close();
    await stores?.close();
    cfg?.cleanup?.();
  });

  /** The version the consume service hands this consumer now (0 = none). */
  async function versionFor(topic: string, identity: Record<string, string>): Promise<number> {
    const res = await consume.service.poll({ identity, subscriptions: [{ topic }], waitMs: 0 });
    return res.updates.find((u) => u.topic === topic)?.version.version ?? 0;
  }
  const sees = (topic: string, identity: Record<string, string>, version: number) =>
    until(async () => (await versionFor(topic, identity)) === version, `${identity.instance} on ${topic} v${version}`);
  async function setup(what: string, plan?: RolloutPlan): Promise<string> {
    const topic = topicName(what);
    await service.createTopic({ name: topic, ...(plan ? { rolloutPlan: plan } : {}) }, 'alice');
    await service.publish({ topic, data: Buffer.from('v1'), publisher: 'alice' });
    for (const who of [canary, euMain, usMain]) await sees(topic, who, 1);
    return topic;
  }
  const audit = async (topic: string): Promise<AuditEntry[]> => (await stores.store.listAudit({ topic, limit: 1000 })).items;
  const runOf = (topic: string, runId: string) => rollouts.get(topic, runId);

  it('a publish with the plan releases stage by stage, each scope at its time, each stage once', async () => {
    const topic = await setup('staged', threeStages(300));
    const startedAt = Date.now();
    const res = await service.publish({ topic, data: Buffer.from('v2'), useRolloutPlan: true, publisher: 'alice' });
    expect(res.releases).toEqual([]);
    expect(res.rollout).toMatchObject({ version: 2, status: 'running', stageIndex: 0 });
    const runId = (res.rollout as RolloutRun).runId;

    // Right after the publish only the canary stage is out.
    expect(await versionFor(topic, usMain)).toBe(1);
    const firstSeen: Record<string, number> = {};
    await until(
      async () => {
        for (const who of [canary, euMain, usMain]) {
          if (firstSeen[who.instance] === undefined && (await versionFor(topic, who)) === 2) firstSeen[who.instance] = Date.now() - startedAt;
        }
        return Object.keys(firstSeen).length === 3;
      },
      'every consumer on v2',
    );
    const [c, e, u] = [firstSeen['c-1'] as number, firstSeen['e-1'] as number, firstSeen['u-1'] as number];
    // Canary at once (before the global stage is even due), each later stage not before its bake time.
    expect(c).toBeLessThan(u);
    expect(c).toBeLessThanOrEqual(e);
    expect(e).toBeGreaterThanOrEqual(300);
    expect(u).toBeGreaterThanOrEqual(600);
    expect(e).toBeLessThanOrEqual(u);

    const done = await until(async () => ((await runOf(topic, runId)).status === 'completed' ? runOf(topic, runId) : undefined), 'run completed');
    // created (0) → stage 1 → stage 2 → stage 3 → completed: each transition once.
    expect(done).toMatchObject({ stageIndex: 2, revision: 4 });
    await until(async () => (await audit(topic)).some((a) => a.action === 'rollout.complete' && a.details.runId === runId), 'the completion audited');
    const releasesAudited = (await audit(topic)).filter((a) => a.action === 'rollout.release' && a.details.runId === runId).map((a) => a.details.stage);
    expect(releasesAudited.sort()).toEqual([1, 2, 3]);
    const releases = (await service.listReleases(topic, 2)).map((r) => [r.scopeKey, r.runId]);
    expect(releases.sort()).toEqual([['', runId], ['cluster=canary', runId], ['region=eu', runId]].sort());
  });

  it('pause / resume / advance / abort behave, with reasons in the audit; abort returns consumers to the previous version', async () => {
    const topic = await setup('controls');
    const v2 = await service.publish({ topic, data: Buffer.from('v2'), scopes: [{ cluster: 'nobody' }], publisher: 'alice' });
    const run = await rollouts.start(topic, v2.version.version, threeStages(60_000), 'alice');
    expect(run).toMatchObject({ status: 'running', stageIndex: 0, startedBy: 'alice' });
    await sees(topic, canary, 2);

    await expectQuire(rollouts.control(topic, run.runId, 'pause', '', 'bob'), Code.INVALID_ARGUMENT, 'reason');
    await expectQuire(rollouts.control(topic, run.runId, 'jump', 'x', 'bob'), Code.INVALID_ARGUMENT, 'action');
    const paused = await rollouts.control(topic, run.runId, 'pause', 'looking at canary graphs', 'bob');
    expect(paused).toMatchObject({ status: 'paused', reason: 'looking at canary graphs' });
    await expectQuire(rollouts.control(topic, run.runId, 'pause', 'again', 'bob'), Code.FAILED_PRECONDITION, 'runId');
    expect((await rollouts.list(topic, true)).map((r) => r.runId)).toEqual([run.runId]);
    const resumed = await rollouts.control(topic, run.runId, 'resume', undefined, 'bob');
    expect(resumed).toMatchObject({ status: 'running', stageIndex: 0 });
    expect(resumed.reason).toBeUndefined();

    const advanced = await rollouts.control(topic, run.runId, 'advance', 'canary is fine', 'bob');
    expect(advanced).toMatchObject({ status: 'running', stageIndex: 1 });
    await sees(topic, euMain, 2);
    expect(await versionFor(topic, usMain)).toBe(1);

    const aborted = await rollouts.control(topic, run.runId, 'abort', 'bad rows', 'carol');
    expect(aborted).toMatchObject({ status: 'aborted', reason: 'bad rows' });
    for (const who of [canary, euMain, usMain]) await sees(topic, who, 1);
    // The release the publish made itself (not the run's) stays.
    expect((await service.listReleases(topic, 2)).filter((r) => r.withdrawnAt === undefined).map((r) => r.scopeKey)).toEqual(['cluster=nobody']);
    await expectQuire(rollouts.control(topic, run.runId, 'abort', 'again', 'carol'), Code.FAILED_PRECONDITION, 'runId');
    expect(await rollouts.list(topic, true)).toEqual([]);

    const actions = (await audit(topic)).filter((a) => a.details.runId === run.runId).map((a) => [a.action, a.actor, a.reason]);
    expect(actions).toEqual(
      expect.arrayContaining([
        ['rollout.start', 'alice', undefined],
        ['rollout.pause', 'bob', 'looking at canary graphs'],
        ['rollout.resume', 'bob', undefined],
        ['rollout.advance', 'bob', 'canary is fine'],
        ['rollout.abort', 'carol', 'bad rows'],
      ]),
    );
  });

  it('a scheduler step racing an abort does not leave the aborted version live', async () => {
    const topic = await setup('race');
    await service.publish({ topic, data: Buffer.from('v2'), scopes: [{ cluster: 'nobody' }], publisher: 'alice' });
    const run = await rollouts.start(topic, 2, { stages: [{ scope: { cluster: 'canary' }, bakeMs: 0 }, { scope: {}, bakeMs: 0 }] }, 'alice');
    // The scheduler read the run (stage 1 released, stage 2 due) just before an operator aborted it.
    const stale = await stores.store.getRun(topic, run.runId);
    await rollouts.control(topic, run.runId, 'abort', 'bad rows', 'carol');
    expect(await rollouts.step(stale as RolloutRun, { actor: 'scheduler' })).toBeUndefined();
    const live = (await stores.store.listReleases(topic)).filter((r) => r.version === 2 && r.runId === run.runId && r.withdrawnAt === undefined);
    expect(live).toEqual([]);
    expect((await stores.store.getRun(topic, run.runId))?.status).toBe('aborted');
  });

  it('a finished run cannot be aborted; bad plans and bad input are refused and change nothing', async () => {
    const topic = await setup('finished');
    const v2 = await service.publish({ topic, data: Buffer.from('v2'), scopes: [{ cluster: 'nobody' }], publisher: 'alice' });
    const run = await rollouts.start(topic, 2, { stages: [{ scope: { cluster: 'canary' }, bakeMs: 0 }, { scope: {}, bakeMs: 60_000 }] }, 'alice');
    const completed = await rollouts.control(topic, run.runId, 'advance', undefined, 'bob');
    expect(completed).toMatchObject({ status: 'completed', stageIndex: 1 });
    await sees(topic, usMain, 2);
    await expectQuire(rollouts.control(topic, run.runId, 'abort', 'too late', 'bob'), Code.FAILED_PRECONDITION, 'runId');
    await expectQuire(rollouts.control(topic, run.runId, 'advance', undefined, 'bob'), Code.FAILED_PRECONDITION, 'runId');
    await sees(topic, usMain, 2);

    const before = await rollouts.list(topic);
    await expectQuire(rollouts.start(topic, v2.version.version, { stages: [] }, 'alice'), Code.INVALID_ARGUMENT, 'plan.stages');
    await expectQuire(
      rollouts.start(topic, v2.version.version, { stages: [{ scope: { cluster: 'a' }, bakeMs: 0 }, { scope: { cluster: 'a' }, bakeMs: 10 }] }, 'alice'),
      Code.INVALID_ARGUMENT,
      'plan.stages[1].scope',
    );
    await expectQuire(rollouts.start(topic, 99, threeStages(10), 'alice'), Code.NOT_FOUND, 'version');
    await expectQuire(rollouts.start(topic, 2, undefined, 'alice'), Code.FAILED_PRECONDITION, 'plan');
    await expectQuire(rollouts.start('ro.missing', 1, threeStages(10), 'alice'), Code.NOT_FOUND, 'topic');
    await expectQuire(rollouts.get(topic, 'no-such-run'), Code.NOT_FOUND, 'runId');
    await expectQuire(service.publish({ topic, data: Buffer.from('v3'), useRolloutPlan: true, publisher: 'alice' }), Code.FAILED_PRECONDITION, 'useRolloutPlan');
    expect(await rollouts.list(topic)).toEqual(before);
    expect(await stores.store.headVersion(topic)).toBe(2);
  });

  for (const action of ['pause', 'rollback'] as const) {
    it(`health gate (${action}): canary instances failing to apply stop the run by themselves, saying why`, async () => {
      const plan: RolloutPlan = {
        stages: [
          { scope: { cluster: 'canary' }, bakeMs: 0 },
          { scope: {}, bakeMs: 60_000 },
        ],
        health: { maxFailureRatio: 0.05, minInstances: 2, action },
      };
      const topic = await setup(`gate-${action}`, plan);
      const res = await service.publish({ topic, data: Buffer.from('v2 bad'), useRolloutPlan: true, publisher: 'alice' });
      const runId = (res.rollout as RolloutRun).runId;
      await sees(topic, canary, 2);
      const now = Date.now();
      const report = (instance: string, cluster: string, ok: boolean) => ({
        topic,
        instance,
        identity: { application: 'shop', cluster, region: 'eu', instance },
        version: ok ? 2 : 1,
        ...(ok ? {} : { failedVersion: 2, error: 'decode failed' }),
        reportedAt: now,
      });
      // One canary instance alone is under minInstances: nothing happens.
      await stores.store.putFleetReports([report('c-1', 'canary', false), report('m-1', 'main', false), report('m-2', 'main', false)]);
      await new Promise((r) => setTimeout(r, 300));
      expect((await runOf(topic, runId)).status).toBe('running');
      await stores.store.putFleetReports([report('c-2', 'canary', true), report('c-3', 'canary', false)]);
      const stopped = await until(async () => {
        const r = await runOf(topic, runId);
        return r.status !== 'running' ? r : undefined;
      }, 'the gate to trip');
      expect(stopped.status).toBe(action === 'pause' ? 'paused' : 'rolled_back');
      expect(stopped.reason).toMatch(/^health gate: [12] of [23] instances .* failed to apply version 2 at stage 1, over the 5.0 % limit$/);
      // The audit entry follows the stored change.
      const entry = await until(async () => (await audit(topic)).find((a) => a.action === `rollout.${action}` && a.details.runId === runId), 'the audit entry');
      expect(entry).toMatchObject({ actor: 'scheduler', reason: stopped.reason, details: { epoch: expect.any(Number) } });
      if (action === 'rollback') await sees(topic, canary, 1);
      else expect(await versionFor(topic, canary)).toBe(2);
      expect(await versionFor(topic, usMain)).toBe(1);
    });
  }

  it('the fallback snapshot exists in every region and resolves like the consume service (random identities)', async () => {
    const topic = await setup('snapshot');
    await service.publish({ topic, data: Buffer.from('v2'), scopes: [{ cluster: 'canary' }, { region: 'us' }], publisher: 'alice' });
    await service.publish({ topic, data: Buffer.from('v3'), scopes: [{ cluster: 'main', region: 'eu' }], publisher: 'alice' });
    await service.release(topic, 3, [{ application: 'other' }], 'alice');
    const key = snapshotKey(topic);
    const read = async (region: string): Promise<TopicSnapshot> => {
      const got = await stores.blobs.get(key, { regions: [region] });
      const chunks: Buffer[] = [];
      for await (const c of got.body) chunks.push(c as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as TopicSnapshot;
    };
    // Written by the scheduler from the change feed: wait for the last release to show.
    for (const region of stores.blobs.regions) {
      await until(async () => {
        if ((await stores.blobs.head(key, region)) === undefined) return undefined;
        const s = await read(region);
        return s.releases.some((r) => r.version === 3 && r.scopeKey === 'application=other');
      }, `snapshot in ${region}`);
    }
    const snapshot = await read(stores.blobs.regions[0] as string);
    expect(snapshot).toMatchObject({ format: 'quire.snapshot/1', topic, topicSettings: { owner: 'alice' } });
    expect(snapshot.versions.map((v) => v.version)).toEqual([1, 2, 3]);
    expect(Buffer.from(snapshot.inline['3'] as string, 'base64').toString()).toBe('v3');
    const state = resolutionStateFromSnapshot(snapshot);
    await sees(topic, { application: 'other', instance: 'o-1' }, 3);
    const pick = <T,>(xs: readonly T[]): T => xs[randomInt(xs.length)] as T;
    for (let i = 0; i < 40; i++) {
      const identity: Record<string, string> = { instance: `i-${i}`, application: pick(['shop', 'other', 'x']) };
      const cluster = pick(['canary', 'main', undefined]);
      const region = pick(['eu', 'us', undefined]);
      if (cluster !== undefined) identity.cluster = cluster;
      if (region !== undefined) identity.region = region;
      expect(resolveVersion(state, identity)?.version ?? 0, JSON.stringify(identity)).toBe(await versionFor(topic, identity));
    }
  });
});
