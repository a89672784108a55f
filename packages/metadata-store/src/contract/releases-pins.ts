import { describe, expect, it } from 'vitest';
import { Code, scopeKey } from '@quire/core';
import type { Pin, Release } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { expectQuireError, pinFixture, releaseFixture, s3Version, T0, topicFixture, uniqueTopic } from './fixtures.ts';

const byVersionAndScope = (a: Release, b: Release): number => a.version - b.version || a.scopeKey.localeCompare(b.scopeKey);
const byPinnedAt = (a: Pin, b: Pin): number => a.pinnedAt - b.pinnedAt || a.pinId.localeCompare(b.pinId);

export function releasesAndPinsContract(ctx: ContractContext): void {
  /** A topic with `n` versions. */
  async function topicWithVersions(label: string, n: number): Promise<string> {
    const topic = uniqueTopic(label);
    await ctx.store.createTopic(topicFixture(topic));
    for (let i = 0; i < n; i++) await ctx.store.commitVersion(s3Version(topic));
    return topic;
  }

  describe('releases', () => {
    it('putRelease / listReleases / withdrawRelease / re-release', async () => {
      const topic = await topicWithVersions('releases', 2);
      const global = releaseFixture(topic, 1, {});
      const canary = releaseFixture(topic, 2, { cluster: 'api-canary', region: 'eu-west-1' }, { runId: 'run-1', releasedAt: T0 + 1 });
      const v1Canary = releaseFixture(topic, 1, { cluster: 'api-canary', region: 'eu-west-1' }, { releasedBy: 'bob' });
      await ctx.store.putRelease(global);
      await ctx.store.putRelease(canary);
      await ctx.store.putRelease(v1Canary);
      expect([...(await ctx.store.listReleases(topic))].sort(byVersionAndScope)).toEqual([global, v1Canary, canary].sort(byVersionAndScope));

      // Withdraw: withdrawnAt set; idempotent (the first time is kept); others untouched.
      await ctx.store.withdrawRelease(topic, 2, canary.scopeKey, T0 + 100);
      await ctx.store.withdrawRelease(topic, 2, canary.scopeKey, T0 + 200);
      const afterWithdraw = [...(await ctx.store.listReleases(topic))].sort(byVersionAndScope);
      expect(afterWithdraw).toEqual([global, v1Canary, { ...canary, withdrawnAt: T0 + 100 }].sort(byVersionAndScope));

      // Re-releasing a withdrawn release makes it active again, with the new release's fields.
      const again = releaseFixture(topic, 2, canary.scope, { releasedAt: T0 + 300, releasedBy: 'carol' });
      await ctx.store.putRelease(again);
      const reactivated = (await ctx.store.listReleases(topic)).find((r) => r.version === 2);
      expect(reactivated).toEqual(again);
      expect(reactivated?.withdrawnAt).toBeUndefined();
      expect(await ctx.store.listReleases(topic)).toHaveLength(3);
    });

    it('putRelease of an unknown version or topic is NOT_FOUND and writes nothing', async () => {
      const topic = await topicWithVersions('release-missing', 1);
      await expectQuireError(ctx.store.putRelease(releaseFixture(topic, 2, {})), Code.NOT_FOUND);
      await expectQuireError(ctx.store.putRelease(releaseFixture(uniqueTopic('nowhere'), 1, {})), Code.NOT_FOUND);
      expect(await ctx.store.listReleases(topic)).toEqual([]);
    });

    it('withdrawRelease of a release that does not exist is NOT_FOUND', async () => {
      const topic = await topicWithVersions('withdraw-missing', 1);
      await expectQuireError(ctx.store.withdrawRelease(topic, 1, '', T0), Code.NOT_FOUND);
      expect(await ctx.store.listReleases(topic)).toEqual([]);
    });

    it('listReleases of a topic without releases is empty', async () => {
      expect(await ctx.store.listReleases(await topicWithVersions('no-releases', 0))).toEqual([]);
    });
  });

  describe('pins', () => {
    it('a second pin on the same scope ends the first; pins on other scopes stay', async () => {
      const topic = await topicWithVersions('pins', 3);
      const p1 = pinFixture(topic, 1, {}, { pinnedAt: T0 + 10, pinnedBy: 'alice' });
      const eu = pinFixture(topic, 1, { region: 'eu-west-1' }, { pinnedAt: T0 + 15 });
      const p2 = pinFixture(topic, 2, {}, { pinnedAt: T0 + 20, pinnedBy: 'bob', reason: 'bad rows in 3' });
      await ctx.store.putPin(p1);
      await ctx.store.putPin(eu);
      await ctx.store.putPin(p2);
      expect([...(await ctx.store.listPins(topic))].sort(byPinnedAt)).toEqual([
        { ...p1, unpinnedAt: T0 + 20, unpinnedBy: 'bob' },
        eu,
        p2,
      ]);
    });

    it('removePin ends the active pin and returns it; with none it returns undefined', async () => {
      const topic = await topicWithVersions('unpin', 2);
      const p1 = pinFixture(topic, 1, {}, { pinnedAt: T0 + 10 });
      const p2 = pinFixture(topic, 2, {}, { pinnedAt: T0 + 20 });
      const eu = pinFixture(topic, 2, { region: 'eu-west-1' }, { pinnedAt: T0 + 25 });
      await ctx.store.putPin(p1);
      await ctx.store.putPin(p2);
      await ctx.store.putPin(eu);
      const ended = await ctx.store.removePin(topic, scopeKey({}), T0 + 30, 'carol');
      expect(ended).toEqual({ ...p2, unpinnedAt: T0 + 30, unpinnedBy: 'carol' });
      expect(await ctx.store.removePin(topic, scopeKey({}), T0 + 40, 'carol')).toBeUndefined();
      expect(await ctx.store.removePin(topic, scopeKey({ cluster: 'none' }), T0 + 40, 'carol')).toBeUndefined();
      expect(await ctx.store.removePin(uniqueTopic('nowhere'), '', T0 + 40, 'carol')).toBeUndefined();
      // The history keeps every pin; the other scope's pin is still active.
      expect([...(await ctx.store.listPins(topic))].sort(byPinnedAt)).toEqual([
        { ...p1, unpinnedAt: T0 + 20, unpinnedBy: p2.pinnedBy },
        { ...p2, unpinnedAt: T0 + 30, unpinnedBy: 'carol' },
        eu,
      ]);
      // A new pin after an unpin starts a fresh active pin.
      const p3 = pinFixture(topic, 1, {}, { pinnedAt: T0 + 50 });
      await ctx.store.putPin(p3);
      const active = (await ctx.store.listPins(topic)).filter((p) => p.unpinnedAt === undefined);
      expect(active.sort(byPinnedAt)).toEqual([eu, p3]);
    });

    it('putPin of an unknown version or topic is NOT_FOUND and writes nothing', async () => {
      const topic = await topicWithVersions('pin-missing', 1);
      await ctx.store.putPin(pinFixture(topic, 1, {}));
      await expectQuireError(ctx.store.putPin(pinFixture(topic, 5, {})), Code.NOT_FOUND);
      await expectQuireError(ctx.store.putPin(pinFixture(uniqueTopic('nowhere'), 1, {})), Code.NOT_FOUND);
      // The failed pin did not end the active one.
      const pins = await ctx.store.listPins(topic);
      expect(pins).toHaveLength(1);
      expect(pins[0]?.unpinnedAt).toBeUndefined();
    });
  });
}
