// The poll evaluation against a reference written with core's resolveVersion /
// candidateVersions over the whole history: random topic states (scoped releases,
// withdrawals, pins, deletions, versions that are not whole), random consumers. The first
// poll runs the asynchronous path (nothing computed yet), the second the synchronous
// fast path (shared answers known): both must answer what the reference says.
// The cache and the consistency checker are small in-memory stand-ins (this is the pure
// decision logic; the integration tests run it on the real stores).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Code, candidateVersions, resolveVersion, scopeKey, systemClock } from '@quire/core';
import type { BlobStore, ConsumerIdentity, MetadataStore, Pin, Release, Scope, VersionRecord } from '@quire/core';
import type { TopicCache, TopicState } from './cache.ts';
import type { ConsistencyChecker } from './consistency.ts';
import { ConsumeService, PollCancel, isSharedAnswer, type PollResult } from './service.ts';

const values = ['a', 'b'] as const;
const scopeArb: fc.Arbitrary<Scope> = fc
  .subarray(['region', 'cluster'])
  .chain((keys) => fc.tuple(...keys.map(() => fc.constantFrom(...values))).map((vs) => Object.fromEntries(keys.map((k, i) => [k, vs[i] as string]))));

interface TopicSpec {
  releases: Array<{ version: number; scope: Scope; at: number; withdrawn: boolean }>;
  pins: Array<{ version: number; scope: Scope; at: number; ended: boolean }>;
  deleted: number[];
  /** Versions stored in S3 (in regions a and b) rather than inline. */
  s3: number[];
  /** (version, region) pairs that fail the consistency check ('*' = every region). */
  broken: Array<[number, string]>;
  allowed: string[];
}

const topicArb: fc.Arbitrary<TopicSpec> = fc.record({
  releases: fc.array(fc.record({ version: fc.integer({ min: 1, max: 6 }), scope: scopeArb, at: fc.integer({ min: 1, max: 50 }), withdrawn: fc.boolean() }), { maxLength: 8 }),
  pins: fc.array(fc.record({ version: fc.integer({ min: 1, max: 6 }), scope: scopeArb, at: fc.integer({ min: 1, max: 50 }), ended: fc.boolean() }), { maxLength: 2 }),
  deleted: fc.subarray([1, 2, 3, 4, 5, 6], { maxLength: 2 }),
  s3: fc.subarray([1, 2, 3, 4, 5, 6]),
  broken: fc.array(fc.tuple(fc.integer({ min: 1, max: 6 }), fc.constantFrom('*', 'a', 'b')), { maxLength: 3 }),
  allowed: fc.subarray(['app-a', 'app-b']),
});

function record(topic: string, version: number, s3: boolean): VersionRecord {
  const size = 2;
  return {
    topic,
    version,
    publishId: `p${version}`,
    createdAt: version,
    publisher: 't',
    metadata: {},
    contentType: 'text/plain',
    size,
    sha256: '0'.repeat(64),
    pointer: s3
      ? { kind: 's3', locations: [{ region: 'a', bucket: 'ba', key: `${topic}/${version}` }, { region: 'b', bucket: 'bb', key: `${topic}/${version}` }] }
      : { kind: 'inline', blobId: `${topic}/${version}` },
  };
}

function stateOf(name: string, spec: TopicSpec): TopicState {
  const releases: Release[] = spec.releases.map((r) => ({
    topic: name,
    version: r.version,
    scope: r.scope,
    scopeKey: scopeKey(r.scope),
    releasedAt: r.at,
    releasedBy: 't',
    ...(r.withdrawn ? { withdrawnAt: r.at + 1 } : {}),
  }));
  const pins: Pin[] = spec.pins.map((p, i) => ({
    topic: name,
    pinId: `pin${i}`,
    scope: p.scope,
    scopeKey: scopeKey(p.scope),
    version: p.version,
    reason: 'r',
    pinnedBy: 't',
    pinnedAt: p.at,
    ...(p.ended ? { unpinnedAt: p.at + 1 } : {}),
  }));
  const deleted = new Map(spec.deleted.map((v) => [v, 10] as const));
  const versions = new Map<number, VersionRecord>();
  for (let v = 1; v <= 6; v++) if (!deleted.has(v)) versions.set(v, record(name, v, spec.s3.includes(v)));
  return {
    topic: { name, owner: 't', description: '', retention: {}, inlineThresholdBytes: 1024, createdAt: 1, updatedAt: 1, revision: 1, ...(spec.allowed.length > 0 ? { allowedApplications: spec.allowed } : {}) },
    releases,
    pins,
    versions,
    resolution: { releases, pins, deleted },
    stamp: JSON.stringify(spec),
    settled: true,
    loadedAt: 1,
  };
}

function isBroken(spec: TopicSpec, v: VersionRecord, region: string | undefined): boolean {
  // The checker's rule: an S3 version is checked in the consumer's region when it has a location there.
  const where = v.pointer.kind === 's3' && region !== undefined && v.pointer.locations.some((l) => l.region === region) ? region : '*';
  return spec.broken.some(([n, r]) => n === v.version && (r === '*' || r === where));
}

/** What a poll must answer, per subscription, from the whole history. */
function reference(states: Map<string, { state: TopicState; spec: TopicSpec }>, identity: ConsumerIdentity, subs: Array<{ topic: string; knownVersion: number }>) {
  const updates: Array<[string, number, string]> = [];
  const errors: Array<[string, Code]> = [];
  for (const sub of subs) {
    const t = states.get(sub.topic);
    if (t === undefined) {
      errors.push([sub.topic, Code.NOT_FOUND]);
      continue;
    }
    const allowed = t.state.topic.allowedApplications;
    if (allowed !== undefined && !allowed.includes(identity.application ?? '')) {
      errors.push([sub.topic, Code.PERMISSION_DENIED]);
      continue;
    }
    const r = resolveVersion(t.state.resolution, identity);
    if (r === undefined || r.version === sub.knownVersion) continue;
    const whole = (n: number) => {
      const v = t.state.versions.get(n);
      return v !== undefined && !isBroken(t.spec, v, identity.region);
    };
    let chosen = whole(r.version) ? r.version : undefined;
    if (chosen === undefined && sub.knownVersion === 0) chosen = candidateVersions(t.state.resolution, identity).find((n) => n !== r.version && whole(n));
    if (chosen !== undefined) updates.push([sub.topic, chosen, r.via]);
  }
  return { updates, errors };
}

function serviceOver(states: Map<string, { state: TopicState; spec: TopicSpec }>): ConsumeService {
  const cache = {
    get: (topic: string) => states.get(topic)?.state,
    onChange: () => () => {},
    stale: false,
  } as unknown as TopicCache;
  const checker = {
    recheckMs: 5000,
    check: async (v: VersionRecord, region: string | undefined) => ({ ok: !isBroken(states.get(v.topic)?.spec as TopicSpec, v, region) }),
    inlineData: async (v: VersionRecord) => new TextEncoder().encode(`${v.topic}:${v.version}`.slice(0, 2)),
    prune: () => {},
    recheckFailed: async () => new Set<string>(),
  } as unknown as ConsistencyChecker;
  return new ConsumeService({ cache, checker, store: {} as MetadataStore, blobs: {} as BlobStore, clock: systemClock, fleetFlushMs: 3_600_000 });
}

const summary = (r: PollResult) => ({
  updates: r.updates.map((u) => [u.topic, u.version.version, u.via] as [string, number, string]),
  errors: r.errors.map((e) => [e.topic, e.code] as [string, Code]),
});

describe('poll evaluation', () => {
  it('the asynchronous and the synchronous (fast) path both answer what resolveVersion over the whole history says', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(topicArb, { minLength: 1, maxLength: 4 }),
        fc.record({ region: fc.constantFrom('a', 'b'), cluster: fc.constantFrom('a', 'b'), application: fc.constantFrom('app-a', 'app-b') }),
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 5, maxLength: 5 }),
        async (specs, id, known) => {
          const states = new Map(specs.map((spec, i) => [`t.t${i}`, { state: stateOf(`t.t${i}`, spec), spec }]));
          const identity = { ...id, instance: 'i-1' };
          const subs = [...states.keys(), 'no.such-topic'].map((topic, i) => ({ topic, knownVersion: known[i] ?? 0 }));
          const service = serviceOver(states);
          try {
            const expected = reference(states, identity, subs);
            // A held poll starts the computations; a poll arriving meanwhile finds them in flight.
            const cancel = new PollCancel();
            const held = service.poll({ identity, subscriptions: subs, waitMs: 30_000 }, cancel);
            const joined = await service.poll({ identity, subscriptions: subs });
            await new Promise((r) => setImmediate(r));
            cancel.abort();
            const cold = await held;
            const warm = await service.poll({ identity, subscriptions: subs });
            expect(summary(cold)).toEqual(expected);
            expect(summary(joined)).toEqual(expected);
            expect(summary(warm)).toEqual(expected);
            // The same update is the same object on both polls (shared answers).
            for (let i = 0; i < warm.updates.length; i++) expect(warm.updates[i]).toBe(cold.updates[i]);
            // S3 locations in the consumer's region first; inline bytes with inline versions.
            for (const u of warm.updates) {
              if (u.version.pointer.kind === 's3') expect(u.version.pointer.locations[0]?.region).toBe(identity.region);
              else expect(u.inlineData).toBeDefined();
            }
          } finally {
            await service.close();
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a poll with nothing new is answered with one shared object, and a held poll with something new at once', async () => {
    const spec: TopicSpec = { releases: [{ version: 2, scope: {}, at: 1, withdrawn: false }], pins: [], deleted: [], s3: [], broken: [], allowed: [] };
    const states = new Map([['t.one', { state: stateOf('t.one', spec), spec }]]);
    const service = serviceOver(states);
    try {
      const identity = { instance: 'i-1' };
      const a = await service.poll({ identity, subscriptions: [{ topic: 't.one', knownVersion: 2 }] });
      const b = await service.poll({ identity: { instance: 'i-2' }, subscriptions: [{ topic: 't.one', knownVersion: 2 }] });
      expect(a).toBe(b);
      expect(isSharedAnswer(a)).toBe(true);
      expect(a.updates).toEqual([]);
      const first = await service.poll({ identity, subscriptions: [{ topic: 't.one', knownVersion: 1 }], waitMs: 30_000 });
      const second = await service.poll({ identity: { instance: 'i-3' }, subscriptions: [{ topic: 't.one', knownVersion: 0 }], waitMs: 30_000 });
      expect(first.updates.map((u) => u.version.version)).toEqual([2]);
      expect(second).toBe(first);
      expect(service.heldPolls).toBe(0);
    } finally {
      await service.close();
    }
  });
});
