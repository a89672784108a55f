import { describe, expect, it } from 'vitest';
import type { Change } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { pinFixture, releaseFixture, s3Version, sleep, T0, topicFixture, uniqueTopic } from './fixtures.ts';

const topicsOf = (changes: Change[]): Set<string> => new Set(changes.map((c) => c.topic));

/**
 * The change feed is at-least-once: every change recorded after a cursor is returned by a
 * call with that cursor (possibly more than once, e.g. within the adapter's repeat window),
 * and a cursor moves forward, so a change older than the window is not returned again.
 */
export function changesContract(ctx: ContractContext): void {
  describe('change feed', () => {
    it('changesSince(undefined) returns no changes and a starting cursor', async () => {
      const start = await ctx.store.changesSince();
      expect(start.changes).toEqual([]);
      expect(typeof start.cursor).toBe('string');
      expect(start.cursor.length).toBeGreaterThan(0);
    });

    it('every kind of change shows the topic up after the cursor', async () => {
      const topic = uniqueTopic('feed');
      await ctx.store.createTopic(topicFixture(topic));
      let { cursor } = await ctx.store.changesSince();
      const steps: [string, () => Promise<unknown>][] = [
        ['commit', () => ctx.store.commitVersion(s3Version(topic))],
        ['commit 2', () => ctx.store.commitVersion(s3Version(topic))],
        ['release', () => ctx.store.putRelease(releaseFixture(topic, 1, {}))],
        ['withdraw', () => ctx.store.withdrawRelease(topic, 1, '', T0 + 1)],
        ['pin', () => ctx.store.putPin(pinFixture(topic, 1, {}))],
        ['unpin', () => ctx.store.removePin(topic, '', T0 + 2, 'alice')],
        ['delete', () => ctx.store.markVersionDeleted(topic, 2, T0 + 3)],
      ];
      for (const [what, step] of steps) {
        await step();
        const res = await ctx.store.changesSince(cursor);
        expect(topicsOf(res.changes).has(topic), `after ${what}`).toBe(true);
        for (const c of res.changes) expect(typeof c.at).toBe('number');
        cursor = res.cursor;
      }
    });

    it('a change made through another instance shows up (cursors work across instances)', async () => {
      const topic = uniqueTopic('feed-cross');
      await ctx.store.createTopic(topicFixture(topic));
      await ctx.withInstances(1, async ([other]) => {
        const { cursor } = await ctx.store.changesSince();
        await other!.commitVersion(s3Version(topic));
        expect(topicsOf((await ctx.store.changesSince(cursor)).changes).has(topic)).toBe(true);
        expect(topicsOf((await other!.changesSince(cursor)).changes).has(topic)).toBe(true);
      });
    });

    it('the cursor advances: a later call does not repeat what an earlier one returned', async () => {
      const window = ctx.harness.changeFeedRepeatWindowMs ?? 0;
      const a = uniqueTopic('feed-a');
      const b = uniqueTopic('feed-b');
      await ctx.store.createTopic(topicFixture(a));
      await ctx.store.createTopic(topicFixture(b));
      const { cursor: c0 } = await ctx.store.changesSince();
      await ctx.store.commitVersion(s3Version(a));
      const first = await ctx.store.changesSince(c0);
      expect(topicsOf(first.changes).has(a)).toBe(true);
      if (window > 0) await sleep(window + 50);

      await ctx.store.commitVersion(s3Version(b));
      const second = await ctx.store.changesSince(first.cursor);
      expect(topicsOf(second.changes).has(b)).toBe(true);
      expect(topicsOf(second.changes).has(a), 'topic a repeated after its cursor').toBe(false);
      if (window > 0) await sleep(window + 50);

      // Nothing new: the same cursor (or the newer one) returns nothing of a or b.
      const third = await ctx.store.changesSince(second.cursor);
      expect(topicsOf(third.changes).has(a)).toBe(false);
      expect(topicsOf(third.changes).has(b)).toBe(false);
      // The old cursor still works and still sees b (at-least-once).
      expect(topicsOf((await ctx.store.changesSince(first.cursor)).changes).has(b)).toBe(true);
    });

    it('many changes after one cursor are all delivered by following the cursor', async () => {
      const topics = Array.from({ length: 30 }, (_, i) => uniqueTopic(`feed-many-${i}`));
      const { cursor: c0 } = await ctx.store.changesSince();
      for (const t of topics) await ctx.store.createTopic(topicFixture(t));
      for (const t of topics) await ctx.store.commitVersion(s3Version(t));
      const seen = new Set<string>();
      let cursor = c0;
      for (let i = 0; i < 50; i++) {
        const res = await ctx.store.changesSince(cursor);
        for (const c of res.changes) seen.add(c.topic);
        if (res.changes.length === 0) break;
        cursor = res.cursor;
      }
      for (const t of topics) expect(seen.has(t), t).toBe(true);
    });
  });
}
