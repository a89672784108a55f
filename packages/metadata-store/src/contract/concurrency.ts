import { describe, expect, it } from 'vitest';
import type { MetadataStore, VersionRecord } from '@quire/core';
import type { MetadataStoreFaults } from '../faults.ts';
import type { ContractContext } from './harness.ts';
import { allPages, range, s3Version, topicFixture, uniqueTopic } from './fixtures.ts';

/** Every version of a topic, oldest first, read page by page. */
async function everyVersion(store: MetadataStore, topic: string): Promise<VersionRecord[]> {
  return (await allPages((cursor) => store.listVersions(topic, { order: 'asc', limit: 100, cursor }), 100)).flat();
}

/** `writers` stores commit `perWriter` versions each at once; returns what each got back. */
async function commitConcurrently(stores: MetadataStore[], topic: string, perWriter: number): Promise<Map<string, number>[]> {
  return Promise.all(
    stores.map(async (store) => {
      const got = new Map<string, number>();
      for (let i = 0; i < perWriter; i++) {
        const nv = s3Version(topic);
        const v = await store.commitVersion(nv);
        expect(v.publishId).toBe(nv.publishId);
        got.set(nv.publishId, v.version);
      }
      return got;
    }),
  );
}

/** Versions are exactly 1..n, each once, and each publishId maps to the version its writer got. */
async function expectGapless(store: MetadataStore, topic: string, n: number, committed: Map<string, number>): Promise<void> {
  const all = await everyVersion(store, topic);
  expect(all.map((v) => v.version)).toEqual(range(1, n));
  expect(new Set(all.map((v) => v.publishId)).size).toBe(n);
  for (const v of all) expect(committed.get(v.publishId), `publishId ${v.publishId}`).toBe(v.version);
  expect(committed.size).toBe(n);
  expect(await store.headVersion(topic)).toBe(n);
}

export function concurrencyContract(ctx: ContractContext): void {
  describe('concurrent writers', () => {
    it('8 writers × 50 commits on one topic → versions exactly 1..400, each once', { timeout: 120_000 }, async () => {
      const topic = uniqueTopic('race');
      await ctx.store.createTopic(topicFixture(topic));
      await ctx.withInstances(7, async (others) => {
        const results = await commitConcurrently([ctx.store, ...others], topic, 50);
        const committed = new Map<string, number>();
        for (const r of results) {
          // A writer's own commits are sequential, so its versions increase.
          const mine = [...r.values()];
          expect(mine).toEqual([...mine].sort((a, b) => a - b));
          for (const [id, v] of r) committed.set(id, v);
        }
        expect(new Set(committed.values()).size).toBe(400);
        await expectGapless(ctx.store, topic, 400, committed);
        // Every instance sees the same head.
        for (const s of others) expect(await s.headVersion(topic)).toBe(400);
      });
    });

    it('the same publishId committed by several instances at once makes one version', async () => {
      const topic = uniqueTopic('race-idem');
      await ctx.store.createTopic(topicFixture(topic));
      await ctx.withInstances(3, async (others) => {
        const stores = [ctx.store, ...others];
        for (let round = 1; round <= 5; round++) {
          const nv = s3Version(topic);
          const got = await Promise.all(stores.map((s) => s.commitVersion(nv)));
          expect(got.map((v) => v.version)).toEqual(stores.map(() => round));
          expect(await ctx.store.headVersion(topic)).toBe(round);
        }
      });
    });

    describe.each<NonNullable<MetadataStoreFaults['commitOutcomeUnknown']>>(['applied', 'not-applied'])(
      'commit with an unknown outcome (%s)',
      (mode) => {
        it('returns the version really written: no duplicate, no gap, head correct', async () => {
          const topic = uniqueTopic(`unknown-${mode}`);
          await ctx.store.createTopic(topicFixture(topic));
          const committed = new Map<string, number>();
          for (let i = 0; i < 2; i++) {
            const nv = s3Version(topic);
            committed.set(nv.publishId, (await ctx.store.commitVersion(nv)).version);
          }
          await ctx.withInstances(
            1,
            async ([faulty]) => {
              const nv = s3Version(topic);
              const v = await faulty!.commitVersion(nv);
              expect(v).toEqual({ ...nv, version: 3 });
              committed.set(nv.publishId, v.version);
              expect(await ctx.store.headVersion(topic)).toBe(3);
              // The fault fired once: the next commit of that instance is ordinary.
              const next = s3Version(topic);
              expect((await faulty!.commitVersion(next)).version).toBe(4);
              committed.set(next.publishId, 4);
            },
            { faults: { commitOutcomeUnknown: mode } },
          );
          const after = s3Version(topic);
          expect((await ctx.store.commitVersion(after)).version).toBe(5);
          committed.set(after.publishId, 5);
          await expectGapless(ctx.store, topic, 5, committed);
        });

        it('resolves it while other writers commit at the same time', async () => {
          const topic = uniqueTopic(`unknown-race-${mode}`);
          await ctx.store.createTopic(topicFixture(topic));
          await ctx.withInstances(
            1,
            async ([faulty]) => {
              const [fromFaulty, fromOthers] = await Promise.all([
                (async () => {
                  const nv = s3Version(topic);
                  return new Map([[nv.publishId, (await faulty!.commitVersion(nv)).version]]);
                })(),
                commitConcurrently([ctx.store, ctx.store], topic, 10),
              ]);
              const committed = new Map<string, number>();
              for (const r of [fromFaulty, ...fromOthers]) for (const [id, v] of r) committed.set(id, v);
              await expectGapless(ctx.store, topic, 21, committed);
            },
            { faults: { commitOutcomeUnknown: mode } },
          );
        });
      },
    );
  });
}
