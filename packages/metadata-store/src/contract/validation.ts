import { describe, expect, it } from 'vitest';
import { Code } from '@quire/core';
import type { ContractContext } from './harness.ts';
import {
  expectQuireError,
  inlineVersion,
  pinFixture,
  releaseFixture,
  runFixture,
  s3Version,
  T0,
  topicFixture,
  uniqueId,
  uniqueTopic,
} from './fixtures.ts';

/** Bad input is refused with INVALID_ARGUMENT naming the field, and nothing is written. */
export function validationContract(ctx: ContractContext): void {
  describe('bad input', () => {
    async function topicWithVersion(label: string): Promise<string> {
      const topic = uniqueTopic(label);
      await ctx.store.createTopic(topicFixture(topic));
      await ctx.store.commitVersion(s3Version(topic));
      return topic;
    }

    it('an invalid topic name (field name / topic)', async () => {
      await expectQuireError(ctx.store.createTopic(topicFixture('Bad Name')), Code.INVALID_ARGUMENT, 'name');
      await expectQuireError(ctx.store.createTopic(topicFixture('')), Code.INVALID_ARGUMENT, 'name');
      await expectQuireError(ctx.store.createTopic(topicFixture('a..b')), Code.INVALID_ARGUMENT, 'name');
      const all = await ctx.store.listTopics({ limit: 1000 });
      expect(all.items.map((t) => t.name)).not.toContain('Bad Name');
      await expectQuireError(ctx.store.getTopic('Bad Name'), Code.INVALID_ARGUMENT, 'name');
      await expectQuireError(ctx.store.commitVersion(s3Version('Bad Name')), Code.INVALID_ARGUMENT, 'topic');
      await expectQuireError(ctx.store.headVersion('UPPER.case'), Code.INVALID_ARGUMENT, 'topic');
      await expectQuireError(ctx.store.listVersions('has space'), Code.INVALID_ARGUMENT, 'topic');
    });

    it('bad topic settings (field named)', async () => {
      const name = uniqueTopic('bad-settings');
      await expectQuireError(
        ctx.store.createTopic(topicFixture(name, { retention: { keepLast: 0 } })),
        Code.INVALID_ARGUMENT,
        'retention.keepLast',
      );
      await expectQuireError(
        ctx.store.createTopic(topicFixture(name, { inlineThresholdBytes: -1 })),
        Code.INVALID_ARGUMENT,
        'inlineThresholdBytes',
      );
      await expectQuireError(
        ctx.store.createTopic(topicFixture(name, { rolloutPlan: { stages: [] } })),
        Code.INVALID_ARGUMENT,
        'rolloutPlan.stages',
      );
      expect(await ctx.store.getTopic(name)).toBeUndefined();
    });

    it('metadata too large on commit (field metadata); nothing written', async () => {
      const topic = uniqueTopic('big-meta');
      await ctx.store.createTopic(topicFixture(topic));
      const { cursor } = await ctx.store.changesSince();
      const metadata = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, 'x'.repeat(4000)]));
      await expectQuireError(ctx.store.commitVersion(s3Version(topic, { metadata })), Code.INVALID_ARGUMENT, 'metadata');
      const [nv, bytes] = inlineVersion(topic, Buffer.from('data'), { metadata });
      await expectQuireError(ctx.store.commitVersion(nv, bytes), Code.INVALID_ARGUMENT, 'metadata');
      await expectQuireError(
        ctx.store.commitVersion(s3Version(topic, { metadata: { 'bad key!': 'v' } })),
        Code.INVALID_ARGUMENT,
        'metadata.bad key!',
      );
      expect(await ctx.store.headVersion(topic)).toBe(0);
      expect(await ctx.store.getInlineData(topic, (nv.pointer as { blobId: string }).blobId)).toBeUndefined();
      const changes = await ctx.store.changesSince(cursor);
      expect(changes.changes.map((c) => c.topic)).not.toContain(topic);
    });

    it('an inconsistent version descriptor (field named)', async () => {
      const topic = uniqueTopic('bad-version');
      await ctx.store.createTopic(topicFixture(topic));
      const [nv, bytes] = inlineVersion(topic, Buffer.from('12345'));
      await expectQuireError(ctx.store.commitVersion(nv), Code.INVALID_ARGUMENT, 'inline');
      await expectQuireError(ctx.store.commitVersion({ ...nv, size: 6 }, bytes), Code.INVALID_ARGUMENT, 'size');
      await expectQuireError(ctx.store.commitVersion(s3Version(topic), bytes), Code.INVALID_ARGUMENT, 'inline');
      await expectQuireError(ctx.store.commitVersion(s3Version(topic, { sha256: 'ABC' })), Code.INVALID_ARGUMENT, 'sha256');
      await expectQuireError(ctx.store.commitVersion(s3Version(topic, { publishId: '' })), Code.INVALID_ARGUMENT, 'publishId');
      await expectQuireError(
        ctx.store.commitVersion(s3Version(topic, { pointer: { kind: 's3', locations: [] } })),
        Code.INVALID_ARGUMENT,
        'pointer.locations',
      );
      await expectQuireError(
        ctx.store.commitVersion(
          s3Version(topic, { pointer: { kind: 's3', locations: [{ region: 'us-east-1', bucket: 'b', key: '../etc/passwd' }] } }),
        ),
        Code.INVALID_ARGUMENT,
        'pointer.locations[0].key',
      );
      expect(await ctx.store.headVersion(topic)).toBe(0);
    });

    it('version 0, negative or fractional (field version)', async () => {
      const topic = await topicWithVersion('bad-number');
      for (const bad of [0, -1, 1.5]) {
        await expectQuireError(ctx.store.getVersion(topic, bad), Code.INVALID_ARGUMENT, 'version');
        await expectQuireError(ctx.store.putRelease(releaseFixture(topic, bad, {})), Code.INVALID_ARGUMENT, 'version');
        await expectQuireError(ctx.store.putPin(pinFixture(topic, bad, {})), Code.INVALID_ARGUMENT, 'version');
        await expectQuireError(ctx.store.markVersionDeleted(topic, bad, T0), Code.INVALID_ARGUMENT, 'version');
      }
      await expectQuireError(ctx.store.getVersions(topic, [1, 0]), Code.INVALID_ARGUMENT, 'versions[1]');
      expect(await ctx.store.listReleases(topic)).toEqual([]);
      expect(await ctx.store.listPins(topic)).toEqual([]);
    });

    it('a scope key that does not match the scope (field scopeKey)', async () => {
      const topic = await topicWithVersion('bad-scope');
      await expectQuireError(
        ctx.store.putRelease(releaseFixture(topic, 1, { region: 'eu-west-1' }, { scopeKey: 'region=us-east-1' })),
        Code.INVALID_ARGUMENT,
        'scopeKey',
      );
      await expectQuireError(ctx.store.putPin(pinFixture(topic, 1, {}, { scopeKey: 'cluster=x' })), Code.INVALID_ARGUMENT, 'scopeKey');
      expect(await ctx.store.listReleases(topic)).toEqual([]);
      expect(await ctx.store.listPins(topic)).toEqual([]);
    });

    it('unknown topic on writes is NOT_FOUND', async () => {
      const topic = uniqueTopic('unknown');
      await expectQuireError(ctx.store.commitVersion(s3Version(topic)), Code.NOT_FOUND);
      await expectQuireError(ctx.store.putRelease(releaseFixture(topic, 1, {})), Code.NOT_FOUND);
      await expectQuireError(ctx.store.putPin(pinFixture(topic, 1, {})), Code.NOT_FOUND);
      await expectQuireError(ctx.store.markVersionDeleted(topic, 1, T0), Code.NOT_FOUND);
      await expectQuireError(ctx.store.createRun(runFixture(topic, 1)), Code.NOT_FOUND);
      expect(await ctx.store.getTopic(topic)).toBeUndefined();
    });

    it('a bad page request (fields limit / cursor)', async () => {
      const topic = await topicWithVersion('bad-page');
      await expectQuireError(ctx.store.listTopics({ limit: 5000 }), Code.INVALID_ARGUMENT, 'limit');
      await expectQuireError(ctx.store.listVersions(topic, { limit: -1 }), Code.INVALID_ARGUMENT, 'limit');
      await expectQuireError(ctx.store.listTopics({ cursor: '!!not a cursor!!' }), Code.INVALID_ARGUMENT, 'cursor');
      await expectQuireError(ctx.store.listVersions(topic, { cursor: '!!not a cursor!!' }), Code.INVALID_ARGUMENT, 'cursor');
      await expectQuireError(ctx.store.listAudit({ cursor: '!!not a cursor!!' }), Code.INVALID_ARGUMENT, 'cursor');
      await expectQuireError(ctx.store.changesSince('!!not a cursor!!'), Code.INVALID_ARGUMENT, 'cursor');
    });

    it('bad runs and leases (field named)', async () => {
      const topic = await topicWithVersion('bad-run');
      const run = runFixture(topic, 1);
      await expectQuireError(ctx.store.createRun({ ...run, plan: { stages: [] } }), Code.INVALID_ARGUMENT, 'plan.stages');
      await expectQuireError(
        ctx.store.createRun({ ...run, status: 'sleeping' as unknown as typeof run.status }),
        Code.INVALID_ARGUMENT,
        'status',
      );
      expect(await ctx.store.getRun(topic, run.runId)).toBeUndefined();
      await ctx.store.createRun(run);
      // The new run's revision must be expectedRevision + 1.
      await expectQuireError(ctx.store.updateRun({ ...run, status: 'paused' }, 0), Code.INVALID_ARGUMENT, 'revision');
      expect(await ctx.store.getRun(topic, run.runId)).toEqual(run);
      const lease = uniqueId('bad-lease');
      await expectQuireError(ctx.store.tryAcquireLease(lease, 'owner', 0), Code.INVALID_ARGUMENT, 'ttlMs');
      await expectQuireError(ctx.store.tryAcquireLease(lease, '', 1000), Code.INVALID_ARGUMENT, 'owner');
      expect(await ctx.store.getLease(lease)).toBeUndefined();
    });
  });
}
