import { describe, expect, it } from 'vitest';
import type { TopicStamp } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { allPages, inlineVersion, pinFixture, releaseFixture, s3Version, T0, topicFixture, uniqueTopic } from './fixtures.ts';

/**
 * Topic state stamps (docs/adr/0008-topic-state-stamps.md): `listTopicStamps` lists every
 * topic with a stamp that every write a consumer could see replaces, and that nothing else
 * changes, so a cache reloads only the topics whose stamp moved.
 */
export function stampsContract(ctx: ContractContext): void {
  describe('topic state stamps', () => {
    const stamps = async (): Promise<Map<string, string | undefined>> => {
      const pages = await allPages((cursor) => ctx.store.listTopicStamps({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) }), 1000);
      return new Map(pages.flat().map((s: TopicStamp) => [s.name, s.stamp]));
    };
    const stampOf = async (name: string): Promise<string | undefined> => (await stamps()).get(name);

    it('lists every topic once, in name order, paged, each with a stamp', async () => {
      const prefix = uniqueTopic('stamp-list');
      const names = ['c', 'a', 'e', 'b', 'd'].map((s) => `${prefix}.${s}`);
      for (const n of names) await ctx.store.createTopic(topicFixture(n));
      const pages = await allPages((cursor) => ctx.store.listTopicStamps({ limit: 2, ...(cursor === undefined ? {} : { cursor }) }), 2);
      const all = pages.flat();
      for (let i = 1; i < all.length; i++) expect(all[i - 1]!.name < all[i]!.name, `${all[i - 1]!.name} < ${all[i]!.name}`).toBe(true);
      const mine = all.filter((s) => s.name.startsWith(`${prefix}.`));
      expect(mine.map((s) => s.name)).toEqual([...names].sort());
      for (const s of mine) expect(typeof s.stamp === 'string' && s.stamp.length > 0, `${s.name} has a stamp`).toBe(true);
      // Same names as listTopics (a name whose topic row is missing may only appear here).
      const topics = (await allPages((cursor) => ctx.store.listTopics({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) }), 1000)).flat();
      const listed = new Set(all.map((s) => s.name));
      for (const t of topics) expect(listed.has(t.name), `${t.name} listed with a stamp`).toBe(true);
    });

    it('every write a consumer could see replaces the stamp; other topics keep theirs', async () => {
      const topic = uniqueTopic('stamp-writes');
      const other = uniqueTopic('stamp-other');
      await ctx.store.createTopic(topicFixture(other));
      const otherStamp = await stampOf(other);
      const [inline, bytes] = inlineVersion(topic, new TextEncoder().encode('stamped'));
      const steps: [string, () => Promise<unknown>][] = [
        ['createTopic', () => ctx.store.createTopic(topicFixture(topic))],
        ['updateTopic', () => ctx.store.updateTopic(topicFixture(topic, { description: 'changed' }), 1)],
        ['commitVersion', () => ctx.store.commitVersion(s3Version(topic))],
        ['commitVersion inline', () => ctx.store.commitVersion(inline, bytes)],
        ['putRelease', () => ctx.store.putRelease(releaseFixture(topic, 1, {}))],
        ['putRelease again (re-release)', () => ctx.store.putRelease(releaseFixture(topic, 1, {}, { releasedAt: T0 + 1 }))],
        ['withdrawRelease', () => ctx.store.withdrawRelease(topic, 1, '', T0 + 2)],
        ['putPin', () => ctx.store.putPin(pinFixture(topic, 2, {}))],
        ['putPin replacing the active pin', () => ctx.store.putPin(pinFixture(topic, 1, {}, { pinnedAt: T0 + 3 }))],
        ['removePin', () => ctx.store.removePin(topic, '', T0 + 4, 'alice')],
        ['markVersionDeleted', () => ctx.store.markVersionDeleted(topic, 2, T0 + 5)],
      ];
      const seen = new Set<string>();
      for (const [what, step] of steps) {
        await step();
        const stamp = await stampOf(topic);
        expect(typeof stamp, `a stamp after ${what}`).toBe('string');
        expect(seen.has(stamp as string), `a new stamp after ${what}`).toBe(false);
        seen.add(stamp as string);
      }
      expect(await stampOf(other)).toBe(otherStamp);
    });

    it('reads do not change the stamp', async () => {
      const topic = uniqueTopic('stamp-reads');
      await ctx.store.createTopic(topicFixture(topic));
      const v = await ctx.store.commitVersion(s3Version(topic));
      const [inline, bytes] = inlineVersion(topic, new TextEncoder().encode('read me'));
      const iv = await ctx.store.commitVersion(inline, bytes);
      await ctx.store.putRelease(releaseFixture(topic, v.version, {}));
      await ctx.store.putPin(pinFixture(topic, v.version, { cluster: 'c1' }));
      const before = await stampOf(topic);
      expect(before).toBeDefined();
      await ctx.store.getTopic(topic);
      await ctx.store.listTopics({ limit: 10 });
      await ctx.store.getVersion(topic, v.version);
      await ctx.store.getVersions(topic, [v.version, iv.version]);
      await ctx.store.headVersion(topic);
      await ctx.store.listVersions(topic);
      await ctx.store.getInlineData(topic, (iv.pointer as { blobId: string }).blobId);
      await ctx.store.listReleases(topic);
      await ctx.store.listPins(topic);
      await ctx.store.changesSince();
      await ctx.store.listTopicStamps({ limit: 10 });
      expect(await stampOf(topic)).toBe(before);
    });

    it('a stamp written through another instance is seen by this one', async () => {
      const topic = uniqueTopic('stamp-cross');
      await ctx.store.createTopic(topicFixture(topic));
      const before = await stampOf(topic);
      await ctx.withInstances(1, async ([other]) => {
        await other!.commitVersion(s3Version(topic));
      });
      const after = await stampOf(topic);
      expect(after).toBeDefined();
      expect(after).not.toBe(before);
    });
  });
}
