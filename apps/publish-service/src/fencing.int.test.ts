// Fencing of the scheduler's rollout writes: a step carries the lease epoch; the run keeps
// the epoch of the scheduler that last wrote it, and a scheduler with an older epoch (its
// lease was taken over while it was paused) can no longer move the run — whatever its own
// clock says about its lease. Both stores.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { storeBackends } from '@quire/test-servers';
import { createStores, type Stores } from './app.ts';
import { RolloutService } from './rollouts.ts';
import { PublishService } from './service.ts';

const backends = storeBackends('fence', () => inject('quireServers'));

describe.each(backends)('rollout fencing on $name', (backend) => {
  let stores: Stores;
  let rollouts: RolloutService;
  let service: PublishService;
  let cleanup: (() => void) | undefined;

  beforeAll(async () => {
    const cfg = backend.config();
    cleanup = cfg.cleanup;
    stores = await createStores(cfg);
    rollouts = new RolloutService({ store: stores.store });
    service = new PublishService({ store: stores.store, blobs: stores.blobs, onPublished: (r, actor) => rollouts.startForPublish(r.topic, r.version, actor) });
  });
  afterAll(async () => {
    await stores?.close();
    cleanup?.();
  });

  it('a scheduler with an older lease epoch cannot move a run a newer one has written', async () => {
    const topic = 'fence.run';
    await service.createTopic(
      {
        name: topic,
        rolloutPlan: { stages: [{ scope: { cluster: 'canary' }, bakeMs: 0 }, { scope: { region: 'eu' }, bakeMs: 0 }, { scope: {}, bakeMs: 0 }] },
      },
      'alice',
    );
    const res = await service.publish({ topic, data: Buffer.from('v1'), useRolloutPlan: true, publisher: 'alice' });
    const runId = res.rollout?.runId as string;
    // The old leader (epoch 1) reads the run, then stalls; a new leader (epoch 2) moves it.
    const seenByOld = await stores.store.getRun(topic, runId);
    if (seenByOld === undefined) throw new Error('no run');
    const moved = await rollouts.step(seenByOld, { actor: 'scheduler', epoch: 2 });
    expect(moved).toMatchObject({ stageIndex: seenByOld.stageIndex + 1, epoch: 2 });
    // The old leader wakes: with the run as it read it, the revision check stops it...
    expect(await rollouts.step(seenByOld, { actor: 'scheduler', epoch: 1 })).toBeUndefined();
    // ...and with a fresh read, the epoch does: nothing is released or stored.
    const fresh = await stores.store.getRun(topic, runId);
    expect(fresh).toEqual(moved);
    const releasesBefore = await stores.store.listReleases(topic);
    expect(await rollouts.step(fresh as NonNullable<typeof fresh>, { actor: 'scheduler', epoch: 1 })).toBeUndefined();
    expect(await stores.store.getRun(topic, runId)).toEqual(moved);
    expect(await stores.store.listReleases(topic)).toEqual(releasesBefore);
    // The current leader (and a later one) go on; an operator's step (no epoch) keeps the stamp.
    const third = await rollouts.step(fresh as NonNullable<typeof fresh>, { actor: 'scheduler', epoch: 2 });
    expect(third).toMatchObject({ stageIndex: (moved?.stageIndex ?? 0) + 1, epoch: 2 });
    const last = await rollouts.step(third as NonNullable<typeof third>, { actor: 'scheduler', epoch: 3 });
    expect(last).toMatchObject({ epoch: 3 });
  });
});
