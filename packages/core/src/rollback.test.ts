import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Pin, Release, RolloutRun, Scope } from './model.ts';
import { resolveVersion, type ResolutionState } from './resolve.ts';
import { rollbackTarget, scopeCovers, scopesNested } from './rollback.ts';
import { scopeKey } from './scope.ts';

let clock = 0;
const rel = (version: number, scope: Scope = {}, extra: Partial<Release> = {}): Release => ({
  topic: 't',
  version,
  scope,
  scopeKey: scopeKey(scope),
  releasedAt: ++clock,
  releasedBy: 'test',
  ...extra,
});
const pin = (version: number, scope: Scope = {}, extra: Partial<Pin> = {}): Pin => ({
  topic: 't',
  pinId: `p${++clock}`,
  scope,
  scopeKey: scopeKey(scope),
  version,
  reason: 'r',
  pinnedBy: 'ops',
  pinnedAt: ++clock,
  ...extra,
});
const run = (version: number, status: RolloutRun['status']): RolloutRun => ({
  topic: 't',
  runId: `r${version}`,
  version,
  plan: { stages: [{ scope: {}, bakeMs: 0 }] },
  status,
  stageIndex: 0,
  stageReleasedAt: 0,
  createdAt: 0,
  updatedAt: 0,
  startedBy: 'ops',
  revision: 1,
});
const state = (releases: Release[], pins: Pin[] = [], deleted: number[] = []): ResolutionState => ({
  releases,
  pins,
  deleted: new Map(deleted.map((v) => [v, 1])),
});
const target = (s: ResolutionState, scope: Scope = {}, runs: RolloutRun[] = []) => {
  const r = rollbackTarget(s, scope, runs);
  return r.ok ? r.decision.target : r.refusal.reason;
};

const canary = { cluster: 'canary' };
const eu = { region: 'eu' };

describe('rollbackTarget', () => {
  it('without rollouts: the previous globally released version', () => {
    const s = state([rel(1), rel(2), rel(3)]);
    expect(rollbackTarget(s, {})).toEqual({ ok: true, decision: { current: 3, target: 2, required: [{}] } });
  });

  it('skips versions that never reached every scope the current one reached', () => {
    // 3 stopped at the canary stage; 4 is in canary and eu: 2 is the last one everywhere.
    const s = state([rel(1), rel(2), rel(3, canary), rel(4, canary), rel(4, eu)]);
    expect(rollbackTarget(s, {})).toMatchObject({ ok: true, decision: { current: 4, target: 2, required: [canary, eu] } });
  });

  it('a version released to each reached scope (not globally) counts as fully rolled out', () => {
    const s = state([rel(1), rel(2, canary), rel(2, eu), rel(3, canary)]);
    expect(target(s)).toBe(2);
  });

  it('skips deleted versions and versions inside an active run; withdrawn releases do not count', () => {
    const s = state([rel(1), rel(2), rel(3), rel(4, {}, { withdrawnAt: 0 }), rel(5)], [], [3]);
    expect(target(s)).toBe(2);
    expect(target(s, {}, [run(2, 'running')])).toBe(1);
    expect(target(s, {}, [run(2, 'completed')])).toBe(2);
    // The withdrawn release of 4 is as if it never happened: 5's predecessor is 2.
    expect(target(state([rel(1, {}, { withdrawnAt: 0 })]))).toBe('no-current');
  });

  it('rolling back again goes further back: the pinned version is the current one', () => {
    const s = state([rel(1), rel(2), rel(3)], [pin(2)]);
    expect(rollbackTarget(s, {})).toMatchObject({ ok: true, decision: { current: 2, target: 1 } });
  });

  it('within a scope: current is what that scope runs; target must cover the scope', () => {
    // 4 only in canary; 3 global. Rolling back canary → 3; rolling back eu → 2 (eu runs 3).
    const s = state([rel(1), rel(2), rel(3), rel(4, canary)]);
    expect(rollbackTarget(s, canary)).toMatchObject({ ok: true, decision: { current: 4, target: 3, required: [canary] } });
    expect(rollbackTarget(s, eu)).toMatchObject({ ok: true, decision: { current: 3, target: 2, required: [eu] } });
    // A version released only to eu does not cover canary.
    const t = state([rel(1, eu), rel(2, eu), rel(3, canary)]);
    expect(target(t, canary)).toBe('no-target');
    expect(target(t, eu)).toBe(1);
  });

  it('refuses when nothing was published, or nothing before the current one was fully rolled out', () => {
    expect(rollbackTarget(state([]), {})).toEqual({ ok: false, refusal: { reason: 'no-current', scope: {} } });
    expect(rollbackTarget(state([rel(1)]), {})).toEqual({ ok: false, refusal: { reason: 'no-target', scope: {}, current: 1, required: [{}] } });
    expect(target(state([rel(1, canary), rel(2)]))).toBe('no-target');
  });

  it('property: the target is below the current version, live, and pinning it moves every consumer of the scope to it', () => {
    const attrs = fc.constantFrom<Scope>({}, canary, eu, { cluster: 'canary', region: 'eu' }, { cluster: 'main' });
    fc.assert(
      fc.property(
        fc.array(fc.record({ version: fc.integer({ min: 1, max: 8 }), scope: attrs, withdrawn: fc.boolean() }), { maxLength: 20 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { maxLength: 3 }),
        attrs,
        (rows, deleted, scope) => {
          const s = state(
            rows.map((r) => rel(r.version, r.scope, r.withdrawn ? { withdrawnAt: 0 } : {})),
            [],
            deleted,
          );
          const res = rollbackTarget(s, scope);
          if (!res.ok) return;
          const { current, target: t } = res.decision;
          expect(t).toBeLessThan(current);
          expect(deleted).not.toContain(t);
          // After pinning t on the scope, every consumer of that scope resolves to t.
          const pinned: ResolutionState = { ...s, pins: [pin(t, scope)] };
          for (const id of [scope, { ...scope, instance: 'x' }]) expect(resolveVersion(pinned, id)?.version).toBe(t);
        },
      ),
    );
  });
});

describe('scope relations', () => {
  it('covers and overlaps', () => {
    expect(scopeCovers({}, canary)).toBe(true);
    expect(scopeCovers(canary, {})).toBe(false);
    expect(scopeCovers(canary, { ...canary, ...eu })).toBe(true);
    expect(scopesNested(canary, { ...canary, ...eu })).toBe(true);
    expect(scopesNested({}, eu)).toBe(true);
    expect(scopesNested(canary, eu)).toBe(false);
  });
});
