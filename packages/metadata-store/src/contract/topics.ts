import { describe, expect, it } from 'vitest';
import { Code } from '@quire/core';
import type { Topic } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { allPages, expectQuireError, T0, topicFixture, uniqueTopic } from './fixtures.ts';

export function topicsContract(ctx: ContractContext): void {
  describe('topics', () => {
    it('migrate is idempotent', async () => {
      await ctx.store.migrate();
      await ctx.store.migrate();
    });

    it('creates a topic at revision 1 and reads every setting back', async () => {
      const name = uniqueTopic('create');
      const topic = topicFixture(name, {
        revision: 7,
        retention: { keepLast: 5, maxAgeMs: 86_400_000 },
        inlineThresholdBytes: 65_536,
        rolloutPlan: {
          stages: [
            { name: 'canary', scope: { cluster: 'api-canary' }, bakeMs: 0 },
            { scope: { region: 'eu-west-1', application: 'checkout' }, bakeMs: 600_000 },
            { name: 'global', scope: {}, bakeMs: 1_800_000 },
          ],
          health: { maxFailureRatio: 0.1, minInstances: 5, action: 'pause' },
        },
        jsonSchema: '{"type":"object","required":["id"]}',
        allowedApplications: ['checkout', 'payments'],
        encryption: { algorithm: 'aes-256-gcm', keyId: 'payments/2026' },
      });
      const created = await ctx.store.createTopic(topic);
      expect(created).toEqual({ ...topic, revision: 1 });
      expect(await ctx.store.getTopic(name)).toEqual({ ...topic, revision: 1 });
    });

    it('stores a topic without optional settings without inventing them', async () => {
      const name = uniqueTopic('minimal');
      const topic = topicFixture(name, { retention: {} });
      await ctx.store.createTopic(topic);
      const got = (await ctx.store.getTopic(name)) as Topic;
      expect(got).toEqual({ ...topic, revision: 1 });
      expect(got.rolloutPlan ?? null).toBeNull();
      expect(got.jsonSchema ?? null).toBeNull();
      expect(got.allowedApplications ?? null).toBeNull();
      expect(got.encryption ?? null).toBeNull();
    });

    it('getTopic of an unknown name is undefined', async () => {
      expect(await ctx.store.getTopic(uniqueTopic('missing'))).toBeUndefined();
    });

    it('refuses a duplicate name with ALREADY_EXISTS and keeps the first topic', async () => {
      const name = uniqueTopic('dup');
      await ctx.store.createTopic(topicFixture(name, { owner: 'first' }));
      await expectQuireError(ctx.store.createTopic(topicFixture(name, { owner: 'second' })), Code.ALREADY_EXISTS);
      expect((await ctx.store.getTopic(name))?.owner).toBe('first');
    });

    it('lists topics ordered by name, page by page, the cursor carrying across pages', async () => {
      const prefix = uniqueTopic('list');
      // Created out of order; names sort as e, d.. → a, b, c, d, e.
      const names = ['e', 'c', 'a', 'd', 'b'].map((s) => `${prefix}.${s}`);
      for (const n of names) await ctx.store.createTopic(topicFixture(n));
      const pages = await allPages((cursor) => ctx.store.listTopics({ limit: 2, cursor }), 2);
      const all = pages.flat().map((t) => t.name);
      // Strictly ascending: ordered, no duplicates across pages.
      for (let i = 1; i < all.length; i++) expect(all[i - 1]! < all[i]!, `${all[i - 1]} < ${all[i]}`).toBe(true);
      expect(all.filter((n) => n.startsWith(`${prefix}.`))).toEqual([...names].sort());
      expect(pages.length).toBeGreaterThanOrEqual(3);
      // The whole list in one page agrees with the paged one.
      const one = await ctx.store.listTopics({ limit: 1000 });
      expect(one.items.map((t) => t.name)).toEqual(all);
      expect(one.next).toBeUndefined();
      // Full records, not just names.
      const listed = pages.flat().find((t) => t.name === names[0]);
      expect(listed).toEqual({ ...topicFixture(names[0]!), revision: 1 });
    });

    it('updates with compare-and-set on the revision', async () => {
      const name = uniqueTopic('update');
      const created = await ctx.store.createTopic(topicFixture(name));
      const changed: Topic = {
        ...created,
        description: 'changed',
        retention: { maxAgeMs: 3_600_000 },
        allowedApplications: ['checkout'],
        encryption: { algorithm: 'aes-256-gcm', keyId: 'k1' },
        updatedAt: T0 + 1000,
      };
      const updated = await ctx.store.updateTopic(changed, 1);
      expect(updated).toEqual({ ...changed, revision: 2 });
      expect(await ctx.store.getTopic(name)).toEqual({ ...changed, revision: 2 });

      // A writer still holding revision 1 loses and changes nothing.
      await expectQuireError(ctx.store.updateTopic({ ...created, description: 'stale', updatedAt: T0 + 2000 }, 1), Code.ABORTED);
      expect(await ctx.store.getTopic(name)).toEqual({ ...changed, revision: 2 });

      // Optional settings left out of an update are cleared.
      const { allowedApplications: _a, encryption: _e, ...withoutApps } = updated;
      const cleared = await ctx.store.updateTopic({ ...withoutApps, updatedAt: T0 + 3000 }, 2);
      expect(cleared.revision).toBe(3);
      expect((await ctx.store.getTopic(name))?.allowedApplications ?? null).toBeNull();
      expect((await ctx.store.getTopic(name))?.encryption ?? null).toBeNull();
    });

    it('updateTopic of an unknown topic is NOT_FOUND and creates nothing', async () => {
      const name = uniqueTopic('update-missing');
      await expectQuireError(ctx.store.updateTopic(topicFixture(name, { revision: 1 }), 1), Code.NOT_FOUND);
      expect(await ctx.store.getTopic(name)).toBeUndefined();
    });
  });
}
