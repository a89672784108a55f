import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConsumerIdentity, Pin, Release, Scope } from './model.ts';
import { candidateVersions, currentResolution, latestPerScope, resolveVersion, type ResolutionState } from './resolve.ts';
import { scopeKey, scopeMatches, scopeSpecificity } from './scope.ts';

const T = 'payments.ab-config';
function rel(version: number, scope: Scope, releasedAt = version, withdrawnAt?: number): Release {
  return { topic: T, version, scope, scopeKey: scopeKey(scope), releasedAt, releasedBy: 't', ...(withdrawnAt ? { withdrawnAt } : {}) };
}
function pin(version: number, scope: Scope, pinnedAt: number, unpinnedAt?: number): Pin {
  return {
    topic: T, pinId: `p${pinnedAt}`, scope, scopeKey: scopeKey(scope), version, reason: 'r', pinnedBy: 'op', pinnedAt,
    ...(unpinnedAt ? { unpinnedAt } : {}),
  };
}

const canary = { application: 'checkout', cluster: 'checkout-canary', region: 'eu-west-1' };
const main = { application: 'checkout', cluster: 'checkout-main', region: 'eu-west-1' };
const us = { application: 'checkout', cluster: 'checkout-main', region: 'us-east-1' };

describe('resolveVersion', () => {
  it('gives the highest version released to a matching scope', () => {
    const state: ResolutionState = {
      releases: [rel(1, {}), rel(2, { cluster: 'checkout-canary' }), rel(3, { region: 'us-east-1' })],
      pins: [],
    };
    expect(resolveVersion(state, canary)?.version).toBe(2);
    expect(resolveVersion(state, main)?.version).toBe(1);
    expect(resolveVersion(state, us)?.version).toBe(3);
    expect(resolveVersion({ releases: [], pins: [] }, main)).toBeUndefined();
  });

  it('adding a scope to an older version changes what matching consumers get only when it is newer for them', () => {
    const state: ResolutionState = { releases: [rel(1, {}), rel(3, { cluster: 'checkout-canary' }), rel(2, { region: 'eu-west-1' }, 10)], pins: [] };
    expect(resolveVersion(state, main)?.version).toBe(2);
    expect(resolveVersion(state, canary)?.version).toBe(3);
  });

  it('a pin wins over newer releases; the most specific pin wins; unpin restores the newest', () => {
    const releases = [rel(1, {}), rel(2, {}), rel(3, {})];
    const state: ResolutionState = { releases, pins: [pin(1, {}, 100), pin(2, { cluster: 'checkout-canary' }, 50)] };
    expect(resolveVersion(state, main)).toMatchObject({ version: 1, via: 'pin' });
    expect(resolveVersion(state, canary)).toMatchObject({ version: 2, via: 'pin' });
    const unpinned: ResolutionState = { releases, pins: [pin(1, {}, 100, 200)] };
    expect(resolveVersion(unpinned, main)).toEqual({ version: 3, via: 'release' });
    // At a time inside the pin's life, the history view still sees the pin.
    expect(resolveVersion(unpinned, main, 150)?.version).toBe(1);
  });

  it('withdrawn releases and deleted versions do not apply; history sees what applied then', () => {
    const state: ResolutionState = {
      releases: [rel(1, {}, 1), rel(2, {}, 10, 20), rel(3, {}, 30)],
      pins: [],
      deleted: new Map([[3, 40]]),
    };
    expect(resolveVersion(state, main)?.version).toBe(1);
    expect(resolveVersion(state, main, 15)?.version).toBe(2);
    expect(resolveVersion(state, main, 35)?.version).toBe(3);
    expect(resolveVersion(state, main, 5)?.version).toBe(1);
    expect(resolveVersion(state, main, 0)).toBeUndefined();
  });

  it('candidateVersions lists the pinned version alone, or released versions newest first', () => {
    const state: ResolutionState = { releases: [rel(1, {}), rel(2, { region: 'eu-west-1' }), rel(4, { region: 'us-east-1' })], pins: [] };
    expect(candidateVersions(state, main)).toEqual([2, 1]);
    expect(candidateVersions({ ...state, pins: [pin(1, {}, 9)] }, main)).toEqual([1]);
  });

  it('latestPerScope gives the newest version per scope', () => {
    const state: ResolutionState = { releases: [rel(1, {}), rel(3, {}), rel(2, { region: 'eu' })], pins: [] };
    expect(Object.fromEntries(latestPerScope(state))).toEqual({ '': 3, 'region=eu': 2 });
  });
});

// ---- property tests over random states -------------------------------------------

const attrs = ['region', 'application', 'cluster'] as const;
const values = ['a', 'b'] as const;
const scopeArb: fc.Arbitrary<Scope> = fc
  .subarray([...attrs])
  .chain((keys) => fc.tuple(...keys.map(() => fc.constantFrom(...values))).map((vs) => Object.fromEntries(keys.map((k, i) => [k, vs[i] as string]))));
const identityArb: fc.Arbitrary<ConsumerIdentity> = fc
  .tuple(fc.constantFrom(...values), fc.constantFrom(...values), fc.constantFrom(...values))
  .map(([region, application, cluster]) => ({ region, application, cluster, instance: 'i-1' }));
const releaseArb = fc.record({ version: fc.integer({ min: 1, max: 20 }), scope: scopeArb, at: fc.integer({ min: 0, max: 100 }), withdrawn: fc.option(fc.integer({ min: 0, max: 100 })) })
  .map(({ version, scope, at, withdrawn }) => rel(version, scope, at, withdrawn === null ? undefined : at + withdrawn + 1));
const pinArb = fc.record({ version: fc.integer({ min: 1, max: 20 }), scope: scopeArb, at: fc.integer({ min: 0, max: 100 }), ended: fc.option(fc.integer({ min: 0, max: 100 })) })
  .map(({ version, scope, at, ended }) => pin(version, scope, at, ended === null ? undefined : at + ended + 1));
const stateArb = fc.record({ releases: fc.array(releaseArb, { maxLength: 12 }), pins: fc.array(pinArb, { maxLength: 3 }) });

describe('resolveVersion properties', () => {
  it('with no active pin, the result is a version released to a matching scope and no matching release is higher', () => {
    fc.assert(
      fc.property(stateArb, identityArb, fc.integer({ min: 0, max: 250 }), (state, id, at) => {
        const r = resolveVersion(state, id, at);
        const live = state.releases.filter((x) => x.releasedAt <= at && (x.withdrawnAt === undefined || x.withdrawnAt > at) && scopeMatches(x.scope, id));
        if (r === undefined || r.via === 'release') {
          const max = Math.max(0, ...live.map((x) => x.version));
          expect(r?.version ?? 0).toBe(max);
        }
      }),
    );
  });

  it('a pin result is an active matching pin with no more specific active matching pin', () => {
    fc.assert(
      fc.property(stateArb, identityArb, fc.integer({ min: 0, max: 250 }), (state, id, at) => {
        const r = resolveVersion(state, id, at);
        if (r?.via !== 'pin') return;
        const live = state.pins.filter((p) => p.pinnedAt <= at && (p.unpinnedAt === undefined || p.unpinnedAt > at) && scopeMatches(p.scope, id));
        expect(live).toContain(r.pin);
        for (const p of live) expect(scopeSpecificity(p.scope)).toBeLessThanOrEqual(scopeSpecificity(r.pin.scope));
      }),
    );
  });

  it('does not depend on the order of releases and pins, and agrees with candidateVersions[0]', () => {
    fc.assert(
      fc.property(stateArb, identityArb, (state, id) => {
        const shuffled = { releases: [...state.releases].reverse(), pins: [...state.pins].reverse() };
        expect(resolveVersion(shuffled, id)?.version).toBe(resolveVersion(state, id)?.version);
        expect(candidateVersions(state, id)[0]).toBe(resolveVersion(state, id)?.version);
      }),
    );
  });

  it('a global release of a higher version reaches every consumer not pinned', () => {
    fc.assert(
      fc.property(stateArb, identityArb, (state, id) => {
        const withNew = { ...state, releases: [...state.releases, rel(99, {}, 0)] };
        const r = resolveVersion(withNew, id);
        if (r?.via === 'release') expect(r.version).toBe(99);
      }),
    );
  });

  it('currentResolution answers now exactly as the whole history does, with at most one release per scope', () => {
    const deletedArb = fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 4 });
    fc.assert(
      fc.property(stateArb, deletedArb, identityArb, (base, gone, id) => {
        const state: ResolutionState = { ...base, deleted: new Map(gone.map((v) => [v, 50])) };
        const current = currentResolution(state);
        expect(resolveVersion(current, id)).toEqual(resolveVersion(state, id));
        expect(new Set(current.releases.map((r) => r.scopeKey)).size).toBe(current.releases.length);
        expect(current.pins.every((p) => p.unpinnedAt === undefined)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
