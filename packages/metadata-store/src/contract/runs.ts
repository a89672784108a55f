import { describe, expect, it } from 'vitest';
import { Code } from '@quire/core';
import type { RolloutRun } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { expectQuireError, runFixture, s3Version, T0, topicFixture, uniqueTopic } from './fixtures.ts';

export function runsContract(ctx: ContractContext): void {
  async function topicWithVersion(label: string): Promise<string> {
    const topic = uniqueTopic(label);
    await ctx.store.createTopic(topicFixture(topic));
    await ctx.store.commitVersion(s3Version(topic));
    return topic;
  }

  /** The run after one compare-and-set step. */
  const next = (run: RolloutRun, patch: Partial<RolloutRun>): RolloutRun => ({
    ...run,
    ...patch,
    updatedAt: run.updatedAt + 1000,
    revision: run.revision + 1,
  });

  describe('rollout runs', () => {
    it('creates a run and reads the whole plan back', async () => {
      const topic = await topicWithVersion('run');
      const run = runFixture(topic, 1, { reason: 'first rollout' });
      await ctx.store.createRun(run);
      expect(await ctx.store.getRun(topic, run.runId)).toEqual(run);
      expect(await ctx.store.getRun(topic, 'no-such-run')).toBeUndefined();
      const bare = runFixture(topic, 1, { plan: { stages: [{ scope: {}, bakeMs: 0 }] } });
      await ctx.store.createRun(bare);
      const got = await ctx.store.getRun(topic, bare.runId);
      expect(got).toEqual(bare);
      expect(got?.plan.health ?? null).toBeNull();
      expect(got?.pausedAt ?? null).toBeNull();
    });

    it('refuses a duplicate run with ALREADY_EXISTS and a run of an unknown topic with NOT_FOUND', async () => {
      const topic = await topicWithVersion('run-dup');
      const run = runFixture(topic, 1);
      await ctx.store.createRun(run);
      await expectQuireError(ctx.store.createRun({ ...run, status: 'paused' }), Code.ALREADY_EXISTS);
      expect(await ctx.store.getRun(topic, run.runId)).toEqual(run);
      const missing = runFixture(uniqueTopic('nowhere'), 1);
      await expectQuireError(ctx.store.createRun(missing), Code.NOT_FOUND);
      expect(await ctx.store.getRun(missing.topic, missing.runId)).toBeUndefined();
    });

    it('lists a topic’s runs newest first', async () => {
      const topic = await topicWithVersion('run-list');
      const r1 = runFixture(topic, 1, { createdAt: T0 + 1000 });
      const r2 = runFixture(topic, 1, { createdAt: T0 + 3000 });
      const r3 = runFixture(topic, 1, { createdAt: T0 + 2000 });
      for (const r of [r1, r2, r3]) await ctx.store.createRun(r);
      expect(await ctx.store.listRuns(topic)).toEqual([r2, r3, r1]);
      expect(await ctx.store.listRuns(await topicWithVersion('run-none'))).toEqual([]);
    });

    it('listActiveRuns returns running and paused runs across topics, and only those', async () => {
      const a = await topicWithVersion('active-a');
      const b = await topicWithVersion('active-b');
      const running = runFixture(a, 1);
      const paused = runFixture(b, 1, { status: 'paused', pausedAt: T0 + 5, reason: 'operator' });
      const done = runFixture(a, 1, { status: 'completed', stageIndex: 2 });
      const aborted = runFixture(b, 1, { status: 'aborted' });
      const rolledBack = runFixture(b, 1, { status: 'rolled_back' });
      const toComplete = runFixture(a, 1);
      for (const r of [running, paused, done, aborted, rolledBack, toComplete]) await ctx.store.createRun(r);
      expect(await ctx.store.updateRun(next(toComplete, { status: 'completed', stageIndex: 2 }), 0)).toBe(true);
      const active = (await ctx.store.listActiveRuns()).filter((r) => r.topic === a || r.topic === b);
      expect(active.map((r) => r.runId).sort()).toEqual([running.runId, paused.runId].sort());
      expect(active.find((r) => r.runId === paused.runId)).toEqual(paused);
    });

    it('keeps the fencing epoch of the scheduler that last wrote a run', async () => {
      const topic = await topicWithVersion('run-epoch');
      const run = runFixture(topic, 1);
      await ctx.store.createRun(run);
      expect((await ctx.store.getRun(topic, run.runId))?.epoch ?? null).toBeNull();
      const stamped = next(run, { stageIndex: 0, epoch: 7 });
      expect(await ctx.store.updateRun(stamped, 0)).toBe(true);
      expect(await ctx.store.getRun(topic, run.runId)).toEqual(stamped);
      expect((await ctx.store.listActiveRuns()).find((r) => r.runId === run.runId)?.epoch).toBe(7);
      await expectQuireError(ctx.store.updateRun(next(stamped, { epoch: -1 }), 1), Code.INVALID_ARGUMENT, 'epoch');
    });

    it('updateRun is a compare-and-set on the revision', async () => {
      const topic = await topicWithVersion('run-cas');
      const run = runFixture(topic, 1);
      await ctx.store.createRun(run);
      const released = next(run, { stageIndex: 0, stageReleasedAt: T0 + 10 });
      expect(await ctx.store.updateRun(released, 0)).toBe(true);
      expect(await ctx.store.getRun(topic, run.runId)).toEqual(released);
      // Stale writer: false, nothing changed.
      expect(await ctx.store.updateRun(next(run, { status: 'aborted' }), 0)).toBe(false);
      expect(await ctx.store.getRun(topic, run.runId)).toEqual(released);
      // Pause then resume: fields left out of the new run are cleared.
      const paused = next(released, { status: 'paused', pausedAt: T0 + 20, reason: 'health gate' });
      expect(await ctx.store.updateRun(paused, 1)).toBe(true);
      const { pausedAt: _p, reason: _r, ...rest } = paused;
      const resumed = next(rest, { status: 'running' });
      expect(await ctx.store.updateRun(resumed, 2)).toBe(true);
      const got = await ctx.store.getRun(topic, run.runId);
      expect(got).toEqual(resumed);
      expect(got?.pausedAt ?? null).toBeNull();
      expect(got?.reason ?? null).toBeNull();
      expect(got?.revision).toBe(3);
    });

    it('updateRun of an unknown run is NOT_FOUND', async () => {
      const topic = await topicWithVersion('run-update-missing');
      await expectQuireError(ctx.store.updateRun(next(runFixture(topic, 1), {}), 0), Code.NOT_FOUND);
    });

    it('two concurrent updateRun with the same expected revision: exactly one wins', async () => {
      const topic = await topicWithVersion('run-race');
      await ctx.withInstances(1, async ([other]) => {
        for (let round = 0; round < 10; round++) {
          const run = runFixture(topic, 1);
          await ctx.store.createRun(run);
          const mine = next(run, { stageIndex: 0, startedBy: 'mine' });
          const theirs = next(run, { status: 'aborted', startedBy: 'theirs' });
          const [a, b] = await Promise.all([ctx.store.updateRun(mine, 0), other!.updateRun(theirs, 0)]);
          expect([a, b].filter(Boolean), `round ${round}`).toHaveLength(1);
          expect(await ctx.store.getRun(topic, run.runId)).toEqual(a ? mine : theirs);
        }
      });
    });
  });
}
