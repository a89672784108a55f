import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Code, QuireError } from './errors.ts';
import type { Pin, Release, Scope, VersionRecord } from './model.ts';
import { resolveVersion } from './resolve.ts';
import { scopeKey } from './scope.ts';
import { SNAPSHOT_FORMAT, dataKey, resolutionStateFromSnapshot, snapshotKey, topicOfDataKey, type TopicSnapshot } from './snapshot.ts';
import { validateBlobKey, validatePublishId, validateTopicName } from './validation.ts';

const T = 'payments.ab-config';
const rel = (version: number, scope: Scope, withdrawnAt?: number): Release => ({
  topic: T, version, scope, scopeKey: scopeKey(scope), releasedAt: version, releasedBy: 't', ...(withdrawnAt ? { withdrawnAt } : {}),
});
const pin = (version: number, scope: Scope): Pin => ({
  topic: T, pinId: `p${version}`, scope, scopeKey: scopeKey(scope), version, reason: 'r', pinnedBy: 'op', pinnedAt: 100,
});
const ver = (version: number, deletedAt?: number): VersionRecord => ({
  topic: T, version, publishId: `p${version}`, createdAt: version, publisher: 't', metadata: {}, contentType: 'text/plain', size: 1,
  sha256: '0'.repeat(64), pointer: { kind: 'inline', blobId: `b${version}` }, ...(deletedAt ? { deletedAt } : {}),
});
function snapshot(releases: Release[], pins: Pin[], versions: VersionRecord[]): TopicSnapshot {
  return {
    format: SNAPSHOT_FORMAT, topic: T, writtenAt: 1,
    topicSettings: { owner: 'o', description: '', retention: {}, inlineThresholdBytes: 1024, revision: 1 },
    releases, pins, versions, inline: {},
  };
}

describe('resolutionStateFromSnapshot', () => {
  it('resolves releases and pins like the live state, skipping deleted or missing versions', () => {
    const canary = { cluster: 'canary' };
    const s = snapshot([rel(1, {}), rel(2, canary), rel(3, {}, 50), rel(4, { region: 'x' })], [], [ver(1), ver(2), ver(4, 9)]);
    const state = resolutionStateFromSnapshot(JSON.parse(JSON.stringify(s)));
    expect(resolveVersion(state, { cluster: 'canary' })?.version).toBe(2);
    expect(resolveVersion(state, { cluster: 'main' })?.version).toBe(1);
    expect(resolveVersion(state, { region: 'x' })?.version).toBe(1);
    const pinned = resolutionStateFromSnapshot(snapshot([rel(1, {}), rel(2, {})], [pin(1, {})], [ver(1), ver(2)]));
    expect(resolveVersion(pinned, {})).toMatchObject({ version: 1, via: 'pin' });
    // A referenced version without a descriptor is never handed out.
    expect(resolveVersion(resolutionStateFromSnapshot(snapshot([rel(5, {})], [], [])), {})).toBeUndefined();
  });

  it('equals resolving the state it was written from (property)', () => {
    const scopes: Scope[] = [{}, { cluster: 'a' }, { cluster: 'b' }, { region: 'r1' }, { cluster: 'a', region: 'r1' }];
    fc.assert(
      fc.property(
        fc.array(fc.record({ v: fc.integer({ min: 1, max: 8 }), s: fc.integer({ min: 0, max: 4 }) }), { maxLength: 10 }),
        fc.option(fc.record({ v: fc.integer({ min: 1, max: 8 }), s: fc.integer({ min: 0, max: 4 }) })),
        fc.record({ cluster: fc.constantFrom('a', 'b', 'c'), region: fc.constantFrom('r1', 'r2') }),
        (rs, p, identity) => {
          const releases = rs.map((r) => rel(r.v, scopes[r.s] as Scope));
          const pins = p === null ? [] : [pin(p.v, scopes[p.s] as Scope)];
          const versions = [...new Set([...releases.map((r) => r.version), ...pins.map((x) => x.version)])].map((v) => ver(v));
          const live = resolveVersion({ releases, pins }, identity);
          const fromSnapshot = resolveVersion(resolutionStateFromSnapshot(JSON.parse(JSON.stringify(snapshot(releases, pins, versions)))), identity);
          expect(fromSnapshot?.version).toBe(live?.version);
        },
      ),
    );
  });

  it('refuses an unknown format, naming the field', () => {
    const err = (() => {
      try {
        resolutionStateFromSnapshot({ ...snapshot([], [], []), format: 'quire.snapshot/9' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(QuireError);
    expect({ code: (err as QuireError).code, field: (err as QuireError).field }).toEqual({ code: Code.INVALID_ARGUMENT, field: 'snapshot.format' });
    expect(() => resolutionStateFromSnapshot(null)).toThrow(QuireError);
    expect(snapshotKey(T)).toBe('snapshots/payments.ab-config.json');
  });
});

describe('payload blob keys', () => {
  const segment = '[a-z0-9](?:[a-z0-9_-]{0,8}[a-z0-9])?';
  const topics = fc.stringMatching(new RegExp(`^${segment}(?:\\.${segment}){0,3}$`)).filter((t) => t.length <= 200);
  const publishIds = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
  const suffixes = fc.option(fc.stringMatching(/^[0-9a-f]{8}$/), { nil: undefined });

  it('round-trip: the topic of dataKey(topic, publishId, suffix) is the topic, and the key is a safe blob key', () => {
    fc.assert(
      fc.property(topics, publishIds, suffixes, (topic, publishId, suffix) => {
        validateTopicName(topic);
        validatePublishId(publishId);
        const key = dataKey(topic, publishId, suffix);
        expect(validateBlobKey(key)).toBe(key);
        expect(topicOfDataKey(key)).toBe(topic);
        expect(key.startsWith(snapshotKey(topic))).toBe(false);
      }),
    );
    expect(dataKey('a.b', 'p1')).toBe('topics/a.b/p1');
    expect(dataKey('a.b', 'p1', '0f3a9c2e')).toBe('topics/a.b/p1.0f3a9c2e');
  });

  it('topicOfDataKey takes the topic of topics/<topic>/<name> only', () => {
    expect(topicOfDataKey('topics/a.b/x')).toBe('a.b');
    expect(topicOfDataKey('topics/a.b/')).toBeUndefined();
    expect(topicOfDataKey('snapshots/a.b.json')).toBeUndefined();
    expect(topicOfDataKey('topics//x')).toBeUndefined();
  });
});
