/**
 * The BlobStore contract: one suite, the same assertions for every adapter (local
 * directories, S3), so that adapters cannot drift. An adapter's integration test calls
 * `describeBlobStoreContract('name', make)` with a factory for a fresh, isolated store
 * with at least two regions.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobListEntry, BlobStore } from '@quire/core';
import { Code, isQuireError } from '@quire/core';
import type { QuireError } from '@quire/core';

export interface BlobStoreFixture {
  /** A store over fresh, empty regions (init() not yet called). */
  store: BlobStore;
  /** The store's regions; at least two. */
  regions: string[];
  /** Remove everything the fixture created. */
  cleanup(): Promise<void>;
  /** Make one region unreachable for this store (a dead S3 endpoint, a vanished directory). */
  /** Make a region fail like a dead server / disk (every adapter must be able to, so the failover test runs everywhere). */
  breakRegion(region: string): Promise<void>;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export function describeBlobStoreContract(adapterName: string, make: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore contract [${adapterName}]`, () => {
    let fx: BlobStoreFixture;
    let store: BlobStore;
    let A: string;
    let B: string;

    beforeAll(async () => {
      fx = await make();
      store = fx.store;
      await store.init();
      [A, B] = fx.regions as [string, string];
    });
    afterAll(async () => {
      await fx?.cleanup();
    });

    it('has the fixture regions, a bucket per region, and an idempotent init', async () => {
      expect(fx.regions.length).toBeGreaterThanOrEqual(2);
      expect([...store.regions]).toEqual(fx.regions);
      for (const r of fx.regions) expect(store.bucketOf(r)).toMatch(/.+/);
      expectSyncError(() => store.bucketOf('no-such-region'), Code.INVALID_ARGUMENT);
      await store.init();
      await store.init();
    });

    it('round-trips bytes to every region: size, sha256, locations, get and head', async () => {
      const key = `${unique()}/bytes.bin`;
      const data = randomBytes(300 * KiB);
      const res = await store.put(key, data, { contentType: 'application/x-test' });
      expect(res.size).toBe(data.length);
      expect(res.sha256).toBe(sha256(data));
      expect(res.locations).toEqual(fx.regions.map((region) => ({ region, bucket: store.bucketOf(region), key })));
      const got = await store.get(key);
      expect(got.region).toBe(A);
      expect(got.size).toBe(data.length);
      expect(got.body).toBeInstanceOf(Readable);
      expect((await readAll(got.body)).equals(data)).toBe(true);
      for (const r of fx.regions) {
        const one = await store.get(key, { regions: [r] });
        expect(one.region).toBe(r);
        expect(sha256(await readAll(one.body))).toBe(res.sha256);
        expect(await store.head(key, r)).toMatchObject({ region: r, size: data.length, contentType: 'application/x-test' });
      }
    });

    it('stores an empty object', async () => {
      const key = `${unique()}/empty`;
      const res = await store.put(key, new Uint8Array(0), { size: 0 });
      expect(res).toMatchObject({ size: 0, sha256: sha256(Buffer.alloc(0)) });
      const got = await store.get(key);
      expect(got.size).toBe(0);
      expect((await readAll(got.body)).length).toBe(0);
      expect(await store.head(key, B)).toMatchObject({ size: 0 });
    });

    it('streams a 12 MiB Readable (multipart) with progress rising to the total', async () => {
      const key = `${unique()}/stream.bin`;
      const total = 12 * MiB + 12_345;
      const progress: Array<{ loaded: number; total?: number }> = [];
      const res = await store.put(key, patternStream(total), { size: total, onProgress: (p) => progress.push(p) });
      expect(res).toMatchObject({ size: total, sha256: patternSha(total) });
      expect(progress.length).toBeGreaterThan(2);
      for (let i = 1; i < progress.length; i++) expect(progress[i]!.loaded).toBeGreaterThanOrEqual(progress[i - 1]!.loaded);
      expect(progress.at(-1)).toEqual({ loaded: total, total });
      expect(progress.every((p) => p.total === total)).toBe(true);
      for (const r of fx.regions) {
        const got = await store.get(key, { regions: [r] });
        expect(got.size).toBe(total);
        expect(await hashStream(got.body)).toEqual({ size: total, sha256: res.sha256 });
      }
      // Without a declared size, progress has no total.
      const seen: Array<{ loaded: number; total?: number }> = [];
      await store.put(`${unique()}/nosize`, patternStream(256 * KiB), { onProgress: (p) => seen.push(p) });
      expect(seen.at(-1)).toEqual({ loaded: 256 * KiB });
      await store.delete(key);
    });

    it('writes only to the chosen regions', async () => {
      const key = `${unique()}/only-b`;
      const res = await store.put(key, Buffer.from('in b only'), { regions: [B] });
      expect(res.locations).toEqual([{ region: B, bucket: store.bucketOf(B), key }]);
      expect(await store.head(key, A)).toBeUndefined();
      expect(await store.head(key, B)).toMatchObject({ region: B, size: 9 });
    });

    it('gets from the first preferred region that has the object, falling back to the next', async () => {
      const onlyB = `${unique()}/only-b`;
      await store.put(onlyB, Buffer.from('from b'), { regions: [B] });
      const got = await store.get(onlyB, { regions: [A, B] });
      expect(got.region).toBe(B);
      expect((await readAll(got.body)).toString()).toBe('from b');
      expect(await regionServing(store.get(onlyB))).toBe(B); // default order: every region
      await expectError(() => store.get(onlyB, { regions: [A] }), Code.NOT_FOUND);

      const both = `${unique()}/both`;
      await store.put(both, Buffer.from('everywhere'));
      const preferB = await store.get(both, { regions: [B, A] });
      expect(preferB.region).toBe(B);
      await readAll(preferB.body);
      const preferA = await store.get(both);
      expect(preferA.region).toBe(A);
      await readAll(preferA.body);
    });

    it('get of a missing key is NOT_FOUND; head of a missing key is undefined', async () => {
      const key = `${unique()}/missing`;
      await expectError(() => store.get(key), Code.NOT_FOUND);
      await expectError(() => store.get(key, { regions: [B] }), Code.NOT_FOUND);
      for (const r of fx.regions) expect(await store.head(key, r)).toBeUndefined();
    });

    it('head gives size, content type and metadata (keys lowercased, as S3 does)', async () => {
      const key = `${unique()}/meta`;
      await store.put(key, Buffer.from('{"a":1}'), {
        contentType: 'application/json',
        metadata: { sha256: 'abc', Source: 'nightly', 'x.y-z_1': 'v' },
      });
      for (const r of fx.regions) {
        expect(await store.head(key, r)).toEqual({
          region: r,
          size: 7,
          contentType: 'application/json',
          metadata: { sha256: 'abc', source: 'nightly', 'x.y-z_1': 'v' },
        });
      }
      const plain = `${unique()}/plain`;
      await store.put(plain, Buffer.from('x'));
      expect(await store.head(plain, A)).toEqual({ region: A, size: 1, contentType: 'application/octet-stream', metadata: {} });
    });

    it('refuses bad metadata and content types with INVALID_ARGUMENT, writing nothing', async () => {
      const p = unique();
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ metadata: { 'bad key': 'x' } }, 'metadata.bad key'],
        [{ metadata: { city: 'Zürich' } }, 'metadata.city'],
        [{ metadata: { big: 'x'.repeat(3000) } }, 'metadata'],
        [{ metadata: { Dup: 'a', dup: 'b' } }, 'metadata.dup'],
        [{ contentType: 'text/plain\n' }, 'contentType'],
        [{ size: -1 }, 'size'],
      ];
      for (const [i, [options, field]] of cases.entries()) {
        await expectError(() => store.put(`${p}/k${i}`, Buffer.from('x'), options), Code.INVALID_ARGUMENT, field);
      }
      for (const r of fx.regions) expect(await collect(() => store.list(p, r))).toEqual([]);
    });

    it('deletes from every region or from some; deleting a missing key is fine', async () => {
      const key = `${unique()}/del`;
      await store.put(key, Buffer.from('x'));
      await store.delete(key, [A]);
      expect(await store.head(key, A)).toBeUndefined();
      expect(await store.head(key, B)).toBeDefined();
      expect(await regionServing(store.get(key))).toBe(B);
      await store.delete(key);
      for (const r of fx.regions) expect(await store.head(key, r)).toBeUndefined();
      await expectError(() => store.get(key), Code.NOT_FOUND);
      await store.delete(key);
      await store.delete(`${unique()}/never-was`, [B]);
    });

    it('lists by string prefix with sizes and times, one region at a time', async () => {
      const p = unique();
      const before = Date.now();
      await store.put(`${p}/a/1`, Buffer.from('1'));
      await store.put(`${p}/a/2`, Buffer.from('22'));
      await store.put(`${p}/ab`, Buffer.from('333'));
      await store.put(`${p}/b/c/d`, Buffer.from('4444'));
      await store.put(`${p}/a/only-b`, Buffer.from('55555'), { regions: [B] });
      const keys = async (prefix: string, region: string): Promise<string[]> =>
        (await collect(() => store.list(prefix, region))).map((e) => e.key).sort();
      expect(await keys(`${p}/a`, A)).toEqual([`${p}/a/1`, `${p}/a/2`, `${p}/ab`]);
      expect(await keys(`${p}/a/`, A)).toEqual([`${p}/a/1`, `${p}/a/2`]);
      expect(await keys(`${p}/a/`, B)).toEqual([`${p}/a/1`, `${p}/a/2`, `${p}/a/only-b`]);
      expect(await keys(`${p}/`, A)).toEqual([`${p}/a/1`, `${p}/a/2`, `${p}/ab`, `${p}/b/c/d`]);
      expect(await keys(`${p}/b/c/d`, A)).toEqual([`${p}/b/c/d`]);
      expect(await keys(`${p}/zzz`, A)).toEqual([]);
      expect(await keys(`${unique()}/`, A)).toEqual([]);
      const entries = await collect(() => store.list(`${p}/a/`, B));
      const sized = Object.fromEntries(entries.map((e) => [e.key, e.size]));
      expect(sized).toEqual({ [`${p}/a/1`]: 1, [`${p}/a/2`]: 2, [`${p}/a/only-b`]: 5 });
      for (const e of entries) {
        expect(e.lastModified).toBeGreaterThan(before - 10 * 60_000);
        expect(e.lastModified).toBeLessThan(Date.now() + 10 * 60_000);
      }
      expect(await keys('', A)).toEqual(expect.arrayContaining([`${p}/a/1`, `${p}/b/c/d`]));
    });

    it('lists more than one page of objects', async () => {
      const p = unique();
      const n = 1001; // one more than an S3 page (1000)
      for (let i = 0; i < n; i += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, n - i) }, (_, j) =>
            store.put(`${p}/${String(i + j).padStart(4, '0')}`, Buffer.from('x'), { regions: [A] }),
          ),
        );
      }
      const keys = (await collect(() => store.list(`${p}/`, A))).map((e) => e.key);
      expect(new Set(keys).size).toBe(n);
    });

    it('overwrites: the last put wins, with its own content type and metadata', async () => {
      const key = `${unique()}/over`;
      await store.put(key, Buffer.from('first version'), { contentType: 'text/plain', metadata: { v: '1', old: 'yes' } });
      const second = await store.put(key, Buffer.from('v2'), { contentType: 'application/json', metadata: { v: '2' } });
      expect(second.size).toBe(2);
      expect((await readAll((await store.get(key)).body)).toString()).toBe('v2');
      for (const r of fx.regions) {
        expect(await store.head(key, r)).toEqual({ region: r, size: 2, contentType: 'application/json', metadata: { v: '2' } });
      }
    });

    it('refuses unsafe keys with INVALID_ARGUMENT (field key), writing nothing', async () => {
      const marker = `unsafe${randomUUID().slice(0, 8)}`;
      const bad = [`../${marker}`, `/${marker}`, `a//${marker}`, `a/./${marker}`, '', `a/../${marker}`, `${marker}/`, `sp ace${marker}`, `t~${marker}`, '.', '..'];
      for (const key of bad) {
        await expectError(() => store.put(key, Buffer.from('x')), Code.INVALID_ARGUMENT, 'key');
        await expectError(() => store.put(key, patternStream(10 * KiB)), Code.INVALID_ARGUMENT, 'key');
        await expectError(() => store.get(key), Code.INVALID_ARGUMENT, 'key');
        await expectError(() => store.head(key, A), Code.INVALID_ARGUMENT, 'key');
        await expectError(() => store.delete(key), Code.INVALID_ARGUMENT, 'key');
      }
      await expectError(() => store.put(undefined as unknown as string, Buffer.from('x')), Code.INVALID_ARGUMENT, 'key');
      await expectError(() => store.put('k'.repeat(1025), Buffer.from('x')), Code.INVALID_ARGUMENT, 'key');
      for (const prefix of ['../', '/abs', 'a//b/', 'a/../b', '..']) {
        await expectError(() => collect(() => store.list(prefix, A)), Code.INVALID_ARGUMENT, 'prefix');
      }
      for (const r of fx.regions) {
        const leaked = (await collect(() => store.list('', r))).filter((e) => e.key.includes(marker));
        expect(leaked).toEqual([]);
      }
    });

    it('refuses unknown regions with INVALID_ARGUMENT, writing nothing', async () => {
      const key = `${unique()}/region`;
      await expectError(() => store.put(key, Buffer.from('x'), { regions: ['nowhere'] }), Code.INVALID_ARGUMENT, 'regions');
      await expectError(() => store.put(key, Buffer.from('x'), { regions: [A, 'nowhere'] }), Code.INVALID_ARGUMENT, 'regions');
      await expectError(() => store.put(key, Buffer.from('x'), { regions: [] }), Code.INVALID_ARGUMENT, 'regions');
      await expectError(() => store.get(key, { regions: ['nowhere'] }), Code.INVALID_ARGUMENT, 'regions');
      await expectError(() => store.delete(key, ['nowhere']), Code.INVALID_ARGUMENT, 'regions');
      await expectError(() => store.head(key, 'nowhere'), Code.INVALID_ARGUMENT, 'region');
      await expectError(() => collect(() => store.list('', 'nowhere')), Code.INVALID_ARGUMENT, 'region');
      for (const r of fx.regions) expect(await store.head(key, r)).toBeUndefined();
    });

    it('fails a size mismatch with INVALID_ARGUMENT (field size) and leaves no object anywhere', async () => {
      const p = unique();
      const big = 12 * MiB;
      const cases: Array<[string, () => Readable | Uint8Array, number]> = [
        ['bytes, declared longer', () => Buffer.from('abc'), 4],
        ['bytes, declared shorter', () => Buffer.from('abc'), 2],
        ['small stream, declared longer', () => patternStream(100 * KiB), 100 * KiB + 1],
        ['small stream, declared shorter', () => patternStream(100 * KiB), 1],
        ['multipart stream, declared longer', () => patternStream(big), big + 1],
        ['multipart stream, declared shorter', () => patternStream(big), big - 1],
      ];
      for (const [i, [, body, size]] of cases.entries()) {
        await expectError(() => store.put(`${p}/k${i}`, body(), { size }), Code.INVALID_ARGUMENT, 'size');
      }
      for (const r of fx.regions) expect(await collect(() => store.list(p, r))).toEqual([]);
    });

    it('rejects a put whose source stream fails, leaving no object (and an older one intact)', async () => {
      const p = unique();
      const cases: Array<[string, number, number]> = [
        ['at once', 4 * MiB, 0],
        ['after 100 KiB', 1 * MiB, 100 * KiB],
        ['mid multipart, after 7 MiB', 12 * MiB, 7 * MiB],
        ['just before the end', 12 * MiB, 12 * MiB - 64 * KiB],
      ];
      for (const [i, [, total, failAt]] of cases.entries()) {
        const e = await expectError(() => store.put(`${p}/k${i}`, patternStream(total, failAt), { size: total }), Code.CANCELLED, 'body');
        expect(e.message).toContain('source broke');
      }
      for (const r of fx.regions) expect(await collect(() => store.list(p, r))).toEqual([]);

      const kept = `${p}/kept`;
      await store.put(kept, Buffer.from('old and whole'));
      await expectError(() => store.put(kept, patternStream(12 * MiB, 6 * MiB)), Code.CANCELLED);
      await expectError(() => store.put(kept, Buffer.from('new'), { size: 99 }), Code.INVALID_ARGUMENT, 'size');
      for (const r of fx.regions) {
        const got = await store.get(kept, { regions: [r] });
        expect((await readAll(got.body)).toString()).toBe('old and whole');
      }
    });

    it('takes concurrent puts of different keys', async () => {
      const p = unique();
      const bodies = Array.from({ length: 6 }, (_, i) => randomBytes(64 * KiB + i));
      const results = await Promise.all(bodies.map((b, i) => store.put(`${p}/${i}`, b)));
      for (const [i, b] of bodies.entries()) {
        expect(results[i]!.sha256).toBe(sha256(b));
        expect(sha256(await readAll((await store.get(`${p}/${i}`, { regions: [B] })).body))).toBe(sha256(b));
      }
    });

    it('streams 160 MiB in and out without holding it in memory', async () => {
      const key = `${unique()}/big.bin`;
      const total = 160 * MiB;
      const gc = exposeGc();
      const live = (): number => {
        gc();
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const baseline = live();
      let peak = baseline;
      let nextSample = 0;
      const res = await store.put(key, patternStream(total), {
        size: total,
        onProgress: ({ loaded }) => {
          if (loaded >= nextSample) {
            peak = Math.max(peak, live());
            nextSample += 4 * MiB;
          }
        },
      });
      expect(res.sha256).toBe(patternSha(total));
      const putGrowth = peak - baseline;

      const got = await store.get(key);
      const getBaseline = live();
      let getPeak = getBaseline;
      let seen = 0;
      let nextGetSample = 0;
      const hash = createHash('sha256');
      for await (const chunk of got.body) {
        hash.update(chunk as Buffer);
        seen += (chunk as Buffer).length;
        if (seen >= nextGetSample) {
          getPeak = Math.max(getPeak, live());
          nextGetSample += 4 * MiB;
        }
      }
      expect(seen).toBe(total);
      expect(hash.digest('hex')).toBe(res.sha256);
      const getGrowth = getPeak - getBaseline;
      console.log(`[${adapterName}] 160 MiB put grew live memory by ${(putGrowth / MiB).toFixed(1)} MiB, get by ${(getGrowth / MiB).toFixed(1)} MiB`);
      // A streaming put holds a few multipart parts per region, whatever the object's size
      // (32-55 MiB measured for two s3proxy regions at 64, 160 and 400 MiB; the higher figures on a loaded machine);
      // buffering the object would hold all 160 MiB, twice for two regions. Half the object
      // tells the two apart with room for a slow machine.
      expect(putGrowth, `put grew live memory by ${(putGrowth / MiB).toFixed(1)} MiB`).toBeLessThan(total / 2);
      expect(getGrowth, `get grew live memory by ${(getGrowth / MiB).toFixed(1)} MiB`).toBeLessThan(24 * MiB);
      await store.delete(key);
    });

    it('survives a broken region: get falls back, writes to it fail UNAVAILABLE leaving nothing elsewhere', async () => {
      const f = await make();
      try {
        const s = f.store;
        await s.init();
        const [a, b] = f.regions as [string, string];
        const p = unique();
        await s.put(`${p}/both`, Buffer.from('both'));
        await s.put(`${p}/only-a`, Buffer.from('only a'), { regions: [a] });
        const bigSize = 12 * MiB;
        await s.put(`${p}/big-a`, patternStream(bigSize), { regions: [a] });
        const reading = (await s.get(`${p}/big-a`)).body[Symbol.asyncIterator]();
        const first = (await reading.next()).value as Buffer;
        await f.breakRegion(a);
        // A body open when its region broke either completes whole or fails with a QuireError.
        let outcome: { size: number; sha256: string } | undefined;
        let failure: unknown;
        try {
          const hash = createHash('sha256').update(first);
          let size = first.length;
          for (let r = await reading.next(); r.done !== true; r = await reading.next()) {
            hash.update(r.value as Buffer);
            size += (r.value as Buffer).length;
          }
          outcome = { size, sha256: hash.digest('hex') };
        } catch (err) {
          failure = err;
        }
        if (outcome !== undefined) expect(outcome).toEqual({ size: bigSize, sha256: patternSha(bigSize) });
        else checkError(failure, Code.UNAVAILABLE, undefined);

        const got = await s.get(`${p}/both`);
        expect(got.region).toBe(b);
        expect((await readAll(got.body)).toString()).toBe('both');
        await expectError(() => s.get(`${p}/only-a`), Code.UNAVAILABLE);
        await expectError(() => s.get(`${p}/only-a`, { regions: [b] }), Code.NOT_FOUND);
        await expectError(() => s.head(`${p}/both`, a), Code.UNAVAILABLE);
        await expectError(() => collect(() => s.list(p, a)), Code.UNAVAILABLE);

        await expectError(() => s.put(`${p}/small`, Buffer.from('small')), Code.UNAVAILABLE);
        await expectError(() => s.put(`${p}/big`, patternStream(12 * MiB), { size: 12 * MiB }), Code.UNAVAILABLE);
        await expectError(() => s.put(`${p}/b-first`, patternStream(12 * MiB), { regions: [b, a] }), Code.UNAVAILABLE);
        expect((await collect(() => s.list(`${p}/`, b))).map((e) => e.key)).toEqual([`${p}/both`]);

        const ok = await s.put(`${p}/b-only`, Buffer.from('fine'), { regions: [b] });
        expect(ok.locations.map((l) => l.region)).toEqual([b]);
        await expectError(() => s.delete(`${p}/both`, [a]), Code.UNAVAILABLE);
        await s.delete(`${p}/both`, [b]);
        expect(await s.head(`${p}/both`, b)).toBeUndefined();
      } finally {
        await f.cleanup();
      }
    });
  });
}

// ---- helpers ---------------------------------------------------------------

let seq = 0;
/** A fresh key prefix per test, so tests sharing a store never see each other's objects. */
function unique(): string {
  seq += 1;
  return `contract-${seq}-${randomUUID().slice(0, 8)}`;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The region a get was served from; the body is drained so nothing is left open. */
async function regionServing(result: Promise<{ region: string; body: Readable }>): Promise<string> {
  const { region, body } = await result;
  await readAll(body);
  return region;
}

async function hashStream(body: Readable): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of body) {
    hash.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

async function collect(list: () => AsyncIterable<BlobListEntry>): Promise<BlobListEntry[]> {
  const out: BlobListEntry[] = [];
  for await (const e of list()) out.push(e);
  return out;
}

const PATTERN_CHUNK = 64 * KiB;
const PATTERN = randomBytes(PATTERN_CHUNK);

/** Chunk `i` of the pattern: the random block with its first bytes stamped with `i`. */
function* patternChunks(total: number): Generator<Buffer> {
  for (let at = 0, i = 0; at < total; at += PATTERN_CHUNK, i++) {
    const chunk = Buffer.from(PATTERN.subarray(0, Math.min(PATTERN_CHUNK, total - at)));
    if (chunk.length >= 4) chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

/** `total` bytes generated on the fly; with `failAt`, the stream errors once that many bytes are out. */
function patternStream(total: number, failAt?: number): Readable {
  return Readable.from(
    (function* gen() {
      let out = 0;
      for (const chunk of patternChunks(total)) {
        if (failAt !== undefined && out >= failAt) throw new Error('source broke');
        out += chunk.length;
        yield chunk;
      }
    })(),
    { objectMode: false, highWaterMark: PATTERN_CHUNK },
  );
}

function patternSha(total: number): string {
  const hash = createHash('sha256');
  for (const chunk of patternChunks(total)) hash.update(chunk);
  return hash.digest('hex');
}

async function expectError(run: () => Promise<unknown>, code: Code, field?: string): Promise<QuireError> {
  let caught: unknown;
  try {
    await run();
  } catch (err) {
    caught = err;
  }
  return checkError(caught, code, field);
}

function expectSyncError(run: () => unknown, code: Code, field?: string): QuireError {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  return checkError(caught, code, field);
}

function checkError(caught: unknown, code: Code, field: string | undefined): QuireError {
  expect(isQuireError(caught), `expected a QuireError ${code}, got ${caught === undefined ? 'success' : String(caught)}`).toBe(true);
  const e = caught as QuireError;
  expect(e.code, e.message).toBe(code);
  if (field !== undefined) expect(e.field, e.message).toBe(field);
  return e;
}

/** A full garbage collection on demand (the flag can be turned on at run time), to measure live memory. */
function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
