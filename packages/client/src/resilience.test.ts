// Pure pieces of the consumer's resilience, no server: the reconnect schedule, round-robin
// over healthy endpoints, the disk cache format, snapshot and history candidates.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Code, SNAPSHOT_FORMAT, resolutionStateFromSnapshot, scopeKey } from '@quire/core';
import type { Pin, Release, Scope, TopicSnapshot, VersionRecord } from '@quire/core';
import { nextRoundRobin, parseEndpoint } from './balancer.ts';
import { CACHE_FORMAT, encodeCacheFile, parseCacheFile } from './disk-cache.ts';
import { backoffDelay } from './errors.ts';
import type { VersionInfo } from './mapping.ts';
import { historyCandidates, parseSnapshot, snapshotCandidates } from './snapshot-fallback.ts';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const T = 'payments.ab-config';

describe('reconnect schedule', () => {
  it('doubles from the base up to the cap, each delay jittered within [ceiling/2, ceiling]', () => {
    const ceilings = Array.from({ length: 10 }, (_, i) => Math.min(30_000, 200 * 2 ** i));
    expect(ceilings).toEqual([200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
    ceilings.forEach((ceiling, attempt) => {
      const seen = new Set<number>();
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, { baseMs: 200, maxMs: 30_000 });
        expect(d).toBeGreaterThanOrEqual(ceiling / 2);
        expect(d).toBeLessThanOrEqual(ceiling);
        seen.add(d);
      }
      // Jittered: clients that failed together do not come back together.
      expect(seen.size).toBeGreaterThan(5);
    });
  });
});

describe('endpoints', () => {
  it('parses host:port, [v6]:port and a dns: prefix; refuses anything else naming the field', () => {
    expect(parseEndpoint('consume-a:7443', 'endpoints[0]')).toEqual({ host: 'consume-a', port: 7443 });
    expect(parseEndpoint('dns:///consume.svc:7443', 'endpoints[0]')).toEqual({ host: 'consume.svc', port: 7443 });
    expect(parseEndpoint('[::1]:7443', 'endpoints[0]')).toEqual({ host: '::1', port: 7443 });
    for (const bad of ['consume', 'consume:', 'h:99999', '']) {
      expect(() => parseEndpoint(bad, 'endpoints[1]')).toThrow(expect.objectContaining({ code: Code.INVALID_ARGUMENT, field: 'endpoints[1]' }));
    }
  });
  it('takes the allowed ones round-robin, skipping the others; -1 when none is allowed', () => {
    const healthy = [true, false, true, true];
    const picks: number[] = [];
    let last = -1;
    for (let i = 0; i < 6; i++) picks.push((last = nextRoundRobin(4, last, (k) => healthy[k] === true)));
    expect(picks).toEqual([0, 2, 3, 0, 2, 3]);
    expect(nextRoundRobin(3, 1, () => false)).toBe(-1);
  });
});

const bytes = new TextEncoder().encode('{"devices":["tv"]}');
const descriptor: VersionInfo = {
  topic: T, version: 7, publishId: 'p7', createdAt: 1, publisher: 'ci', metadata: { source: 'nightly' }, contentType: 'application/json',
  size: bytes.byteLength, sha256: sha(bytes), pointer: { kind: 'inline', blobId: 'b7' }, scopes: [{}],
};

describe('disk cache format', () => {
  it('round-trips descriptor and bytes', () => {
    const file = encodeCacheFile(descriptor, bytes);
    expect(file.subarray(0, CACHE_FORMAT.length).toString()).toBe(CACHE_FORMAT);
    const back = parseCacheFile(file, T);
    expect(back.descriptor).toEqual(descriptor);
    expect(Buffer.from(back.bytes).equals(Buffer.from(bytes))).toBe(true);
  });
  it('refuses to write bytes that do not match the descriptor', () => {
    expect(() => encodeCacheFile(descriptor, new TextEncoder().encode('other'))).toThrow(expect.objectContaining({ code: Code.DATA_LOSS }));
  });
  it('refuses every kind of damage with DATA_LOSS, never returning a value', () => {
    const file = encodeCacheFile(descriptor, bytes);
    const nl = file.indexOf(0x0a);
    const flip = (at: number) => {
      const f = Buffer.from(file);
      f[at] = (f[at] as number) ^ 0x01;
      return f;
    };
    const damaged: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['truncated payload', file.subarray(0, file.length - 3)],
      ['truncated descriptor', file.subarray(0, nl + 10)],
      ['bit flip in the payload', flip(file.length - 2)],
      ['bit flip in the descriptor', flip(nl + 20)],
      ['bit flip in the header checksum', flip(CACHE_FORMAT.length + 3)],
      ['other format', Buffer.from(file.toString('latin1').replace('quire.cache/1', 'quire.cache/2'), 'latin1')],
      ['extra bytes', Buffer.concat([file, Buffer.from('x')])],
    ];
    for (const [what, f] of damaged) {
      expect(() => parseCacheFile(f, T), what).toThrow(expect.objectContaining({ code: Code.DATA_LOSS, field: 'cacheDir' }));
    }
    expect(() => parseCacheFile(file, 'other.topic')).toThrow(/holds topic/);
  });
  it('refuses a descriptor whose checksum was recomputed but whose payload no longer matches', () => {
    const forged = { ...descriptor, sha256: '0'.repeat(64) };
    const line = JSON.stringify(forged);
    const f = Buffer.concat([Buffer.from(`${CACHE_FORMAT} ${sha(line)} ${bytes.byteLength}\n${line}\n`), bytes]);
    expect(() => parseCacheFile(f, T)).toThrow(expect.objectContaining({ code: Code.DATA_LOSS }));
  });
});

const rel = (version: number, scope: Scope): Release => ({ topic: T, version, scope, scopeKey: scopeKey(scope), releasedAt: version, releasedBy: 't' });
const ver = (version: number, extra: Partial<VersionRecord> = {}): VersionRecord => ({
  topic: T, version, publishId: `p${version}`, createdAt: version, publisher: 't', metadata: {}, contentType: 'text/plain', size: 1,
  sha256: '0'.repeat(64), pointer: { kind: 's3', locations: [{ region: 'a', bucket: 'b', key: `k${version}` }] }, ...extra,
});
function snapshot(releases: Release[], pins: Pin[], versions: VersionRecord[], inline: Record<string, string> = {}): TopicSnapshot {
  return {
    format: SNAPSHOT_FORMAT, topic: T, writtenAt: 1,
    topicSettings: { owner: 'o', description: '', retention: {}, inlineThresholdBytes: 1024, revision: 1 },
    releases, pins, versions, inline,
  };
}

describe('snapshot candidates (core resolution)', () => {
  it('lists the versions meant for the consumer newest first, with inline bytes and release scopes', () => {
    const canary = { cluster: 'canary' };
    const s = snapshot([rel(1, {}), rel(2, canary), rel(3, { region: 'x' })], [], [ver(1), ver(2, { pointer: { kind: 'inline', blobId: 'b2' } }), ver(3)], {
      '2': Buffer.from('hi').toString('base64'),
    });
    const { snapshot: parsed, state } = parseSnapshot(Buffer.from(JSON.stringify(s)), T);
    const cs = snapshotCandidates(parsed, state, { cluster: 'canary' });
    expect(cs.map((c) => c.descriptor.version)).toEqual([2, 1]);
    expect(Buffer.from(cs[0]?.inline ?? []).toString()).toBe('hi');
    expect(cs[0]?.descriptor.scopes).toEqual([canary]);
    expect(cs[0]?.via).toBe('release');
    expect(snapshotCandidates(parsed, state, { cluster: 'main' }).map((c) => c.descriptor.version)).toEqual([1]);
  });
  it('gives the pinned version alone, and never a deleted one', () => {
    const pin: Pin = { topic: T, pinId: 'p', scope: {}, scopeKey: '', version: 1, reason: 'r', pinnedBy: 'op', pinnedAt: 5 };
    const s = snapshot([rel(1, {}), rel(2, {})], [pin], [ver(1), ver(2)]);
    const cs = snapshotCandidates(s, resolutionStateFromSnapshot(s), {});
    expect(cs.map((c) => [c.descriptor.version, c.via])).toEqual([[1, 'pin']]);
    const d = snapshot([rel(1, {}), rel(2, {})], [], [ver(1), ver(2, { deletedAt: 9 })]);
    expect(snapshotCandidates(d, resolutionStateFromSnapshot(d), {}).map((c) => c.descriptor.version)).toEqual([1]);
  });
  it('refuses a snapshot of another topic, an unknown format or bytes that are not JSON', () => {
    expect(() => parseSnapshot(Buffer.from(JSON.stringify({ ...snapshot([], [], []), topic: 'x.y' })), T)).toThrow(
      expect.objectContaining({ field: 'snapshot.topic' }),
    );
    expect(() => parseSnapshot(Buffer.from(JSON.stringify({ ...snapshot([], [], []), format: 'quire.snapshot/9' })), T)).toThrow(
      expect.objectContaining({ field: 'snapshot.format' }),
    );
    expect(() => parseSnapshot(Buffer.from('{"format":'), T)).toThrow(expect.objectContaining({ code: Code.DATA_LOSS }));
  });
});

describe('history walk-back (core candidateVersions)', () => {
  const info = (version: number, scopes: Scope[], deletedAt?: number): VersionInfo => ({ ...descriptor, version, scopes, ...(deletedAt ? { deletedAt } : {}) });
  it('older versions released to a matching scope, newest first, deleted ones left out', () => {
    const list = [info(6, [{}]), info(5, [{ cluster: 'other' }]), info(4, [{ cluster: 'canary' }]), info(3, [{}], 10), info(2, []), info(1, [{}])];
    expect(historyCandidates(list, { cluster: 'canary' }, 6)).toEqual([4, 1]);
    expect(historyCandidates(list, { cluster: 'main' }, 7)).toEqual([6, 1]);
  });
});
