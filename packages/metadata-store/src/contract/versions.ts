import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Code } from '@quire/core';
import type { VersionRecord } from '@quire/core';
import type { ContractContext } from './harness.ts';
import { allPages, expectQuireError, inlineVersion, range, s3Version, T0, topicFixture, uniqueTopic } from './fixtures.ts';

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export function versionsContract(ctx: ContractContext): void {
  describe('versions', () => {
    async function newTopic(label: string): Promise<string> {
      const name = uniqueTopic(label);
      await ctx.store.createTopic(topicFixture(name));
      return name;
    }

    it('allocates 1, 2, 3 … and reads versions back by number', async () => {
      const topic = await newTopic('alloc');
      expect(await ctx.store.headVersion(topic)).toBe(0);
      const nvs = [s3Version(topic), s3Version(topic), s3Version(topic)];
      const committed: VersionRecord[] = [];
      for (const nv of nvs) committed.push(await ctx.store.commitVersion(nv));
      expect(committed.map((v) => v.version)).toEqual([1, 2, 3]);
      committed.forEach((v, i) => expect(v).toEqual({ ...nvs[i], version: i + 1 }));
      expect(await ctx.store.headVersion(topic)).toBe(3);
      expect(await ctx.store.getVersion(topic, 2)).toEqual(committed[1]);
      expect(await ctx.store.getVersion(topic, 4)).toBeUndefined();
      const some = await ctx.store.getVersions(topic, [3, 1, 99]);
      expect([...some].sort((a, b) => a.version - b.version)).toEqual([committed[0], committed[2]]);
      expect(await ctx.store.getVersions(topic, [])).toEqual([]);
    });

    it('keeps S3 locations, metadata and every descriptor field', async () => {
      const topic = await newTopic('s3');
      const nv = s3Version(topic, {
        metadata: { source: 'nightly', 'build.id': '2024-06-01T00:00:00Z', empty: '', unicode: 'café ✓ 数据' },
        contentType: 'text/csv; charset=utf-8',
        size: 7_000_000_000,
        publisher: 'svc:devices-job',
        createdAt: T0 + 123,
        pointer: {
          kind: 's3',
          locations: [
            { region: 'us-east-1', bucket: 'b-us', key: `${topic}/v/data.csv` },
            { region: 'eu-west-1', bucket: 'b-eu', key: `${topic}/v/data.csv` },
            { region: 'ap-south-1', bucket: 'b-ap', key: `${topic}/v/data.csv` },
          ],
        },
      });
      const v = await ctx.store.commitVersion(nv);
      expect(v).toEqual({ ...nv, version: 1 });
      expect(await ctx.store.getVersion(topic, 1)).toEqual({ ...nv, version: 1 });
    });

    it('stores inline bytes and reads them back by blobId, binary-safe, up to 1 MiB', async () => {
      const topic = await newTopic('inline');
      const allBytes = Uint8Array.from(range(0, 255 * 4 + 3), (i) => i % 256);
      const big = new Uint8Array(randomBytes(1024 * 1024));
      const empty = new Uint8Array(0);
      for (const bytes of [allBytes, big, empty]) {
        const [nv, data] = inlineVersion(topic, bytes);
        const v = await ctx.store.commitVersion(nv, data);
        expect(v.pointer).toEqual(nv.pointer);
        const blobId = (nv.pointer as { blobId: string }).blobId;
        const back = await ctx.store.getInlineData(topic, blobId);
        expect(back).toBeInstanceOf(Uint8Array);
        expect(back?.byteLength).toBe(bytes.byteLength);
        expect(bytesEqual(back, bytes)).toBe(true);
        expect(await ctx.store.getVersion(topic, v.version)).toEqual({ ...nv, version: v.version });
      }
      expect(await ctx.store.getInlineData(topic, 'no-such-blob')).toBeUndefined();
    });

    it('lists 250 versions page by page, newest first and oldest first', { timeout: 120_000 }, async () => {
      const topic = await newTopic('paging');
      for (let i = 0; i < 250; i++) await ctx.store.commitVersion(s3Version(topic, { metadata: { i: String(i) } }));
      expect(await ctx.store.headVersion(topic)).toBe(250);

      const desc = await allPages((cursor) => ctx.store.listVersions(topic, { limit: 40, cursor }), 40);
      expect(desc.flat().map((v) => v.version)).toEqual(range(1, 250).reverse());
      expect(desc.length).toBeGreaterThanOrEqual(7);
      const asc = await allPages((cursor) => ctx.store.listVersions(topic, { limit: 40, order: 'asc', cursor }), 40);
      expect(asc.flat().map((v) => v.version)).toEqual(range(1, 250));
      // Records are whole in lists too.
      expect(asc.flat()[9]).toEqual(await ctx.store.getVersion(topic, 10));
      expect(asc.flat()[9]?.metadata).toEqual({ i: '9' });

      // Default order is newest first; a cursor continues where its page ended.
      const first = await ctx.store.listVersions(topic, { limit: 3 });
      expect(first.items.map((v) => v.version)).toEqual([250, 249, 248]);
      const second = await ctx.store.listVersions(topic, { limit: 3, cursor: first.next });
      expect(second.items.map((v) => v.version)).toEqual([247, 246, 245]);
    });

    it('is idempotent on publishId: the same publish returns the same version', async () => {
      const topic = await newTopic('idem');
      const nv = s3Version(topic);
      const first = await ctx.store.commitVersion(nv);
      const again = await ctx.store.commitVersion({ ...nv, metadata: { retried: 'yes' } });
      expect(again).toEqual(first);
      expect(await ctx.store.headVersion(topic)).toBe(1);
      const other = await ctx.store.commitVersion(s3Version(topic));
      expect(other.version).toBe(2);
      expect(await ctx.store.commitVersion(nv)).toEqual(first);
      expect(await ctx.store.headVersion(topic)).toBe(2);
      const [inlineNv, bytes] = inlineVersion(topic, Buffer.from('hello'));
      const inl = await ctx.store.commitVersion(inlineNv, bytes);
      expect(await ctx.store.commitVersion(inlineNv, bytes)).toEqual(inl);
      expect((await ctx.store.listVersions(topic)).items.map((v) => v.version)).toEqual([3, 2, 1]);
    });

    it('refuses a commit to an unknown topic with NOT_FOUND and writes nothing', async () => {
      const topic = uniqueTopic('nowhere');
      const [nv, bytes] = inlineVersion(topic, Buffer.from('orphan?'));
      await expectQuireError(ctx.store.commitVersion(nv, bytes), Code.NOT_FOUND);
      await expectQuireError(ctx.store.commitVersion(s3Version(topic)), Code.NOT_FOUND);
      // Create the topic afterwards: no version and no inline bytes were left behind.
      await ctx.store.createTopic(topicFixture(topic));
      expect(await ctx.store.headVersion(topic)).toBe(0);
      expect((await ctx.store.listVersions(topic)).items).toEqual([]);
      expect(await ctx.store.getInlineData(topic, (nv.pointer as { blobId: string }).blobId)).toBeUndefined();
      // …and the same publishId now makes version 1.
      expect((await ctx.store.commitVersion(nv, bytes)).version).toBe(1);
    });

    it('markVersionDeleted sets deletedAt, removes inline bytes, is idempotent, and can be hidden from lists', async () => {
      const topic = await newTopic('delete');
      const made: { version: number; blobId: string; bytes: Uint8Array }[] = [];
      for (let i = 1; i <= 3; i++) {
        const [nv, bytes] = inlineVersion(topic, Buffer.from(`payload ${i}`));
        const v = await ctx.store.commitVersion(nv, bytes);
        made.push({ version: v.version, blobId: (nv.pointer as { blobId: string }).blobId, bytes });
      }
      const at = T0 + 10_000;
      await ctx.store.markVersionDeleted(topic, 2, at);
      const deleted = await ctx.store.getVersion(topic, 2);
      expect(deleted?.deletedAt).toBe(at);
      expect(await ctx.store.getInlineData(topic, made[1]!.blobId)).toBeUndefined();
      // Neighbours untouched.
      expect(bytesEqual(await ctx.store.getInlineData(topic, made[0]!.blobId), made[0]!.bytes)).toBe(true);
      expect((await ctx.store.getVersion(topic, 3))?.deletedAt).toBeUndefined();

      // Idempotent: a second call keeps the first deletion time.
      await ctx.store.markVersionDeleted(topic, 2, at + 5000);
      expect((await ctx.store.getVersion(topic, 2))?.deletedAt).toBe(at);

      // History shows it as deleted by default; includeDeleted: false hides it, across pages too.
      expect((await ctx.store.listVersions(topic)).items.map((v) => [v.version, v.deletedAt])).toEqual([
        [3, undefined],
        [2, at],
        [1, undefined],
      ]);
      const visible = await allPages((cursor) => ctx.store.listVersions(topic, { includeDeleted: false, limit: 1, cursor }), 1);
      expect(visible.flat().map((v) => v.version)).toEqual([3, 1]);
      const visibleAsc = await ctx.store.listVersions(topic, { includeDeleted: false, order: 'asc' });
      expect(visibleAsc.items.map((v) => v.version)).toEqual([1, 3]);

      // Unknown versions are NOT_FOUND.
      await expectQuireError(ctx.store.markVersionDeleted(topic, 99, at), Code.NOT_FOUND);
    });

    it('never hands out a number twice, even after the head version was deleted', async () => {
      const topic = await newTopic('no-reuse');
      await ctx.store.commitVersion(s3Version(topic));
      await ctx.store.commitVersion(s3Version(topic));
      await ctx.store.markVersionDeleted(topic, 2, T0);
      expect(await ctx.store.headVersion(topic)).toBe(2);
      expect((await ctx.store.commitVersion(s3Version(topic))).version).toBe(3);
    });
  });
}
