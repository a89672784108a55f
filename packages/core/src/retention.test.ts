import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Pin, Release, RolloutRun } from './model.ts';
import { protectedVersions, protectionOf, selectForDeletion, type RetentionCandidate } from './retention.ts';
import { newRun } from './rollout.ts';
import { scopeKey } from './scope.ts';

const DAY = 24 * 3600 * 1000;
const vs = (n: number, now: number, gapMs: number): RetentionCandidate[] =>
  Array.from({ length: n }, (_, i) => ({ version: i + 1, createdAt: now - (n - i) * gapMs }));

describe('selectForDeletion', () => {
  const now = 100 * DAY;
  it('keeps the last N', () => {
    expect(selectForDeletion(vs(5, now, DAY), { keepLast: 2 }, new Set(), now)).toEqual([1, 2, 3]);
  });
  it('keeps versions younger than D', () => {
    expect(selectForDeletion(vs(5, now, DAY), { maxAgeMs: 2.5 * DAY }, new Set(), now)).toEqual([1, 2, 3]);
  });
  it('with both limits, a version must be outside both to go', () => {
    expect(selectForDeletion(vs(5, now, DAY), { keepLast: 1, maxAgeMs: 3.5 * DAY }, new Set(), now)).toEqual([1, 2]);
    expect(selectForDeletion(vs(5, now, DAY), { keepLast: 4, maxAgeMs: 1.5 * DAY }, new Set(), now)).toEqual([1]);
  });
  it('never deletes protected versions, and ignores already deleted ones', () => {
    const versions = vs(6, now, DAY);
    (versions[0] as RetentionCandidate).deletedAt = now - DAY;
    expect(selectForDeletion(versions, { keepLast: 1 }, new Set([2, 4]), now)).toEqual([3, 5]);
  });
  it('deletes nothing without a policy', () => {
    expect(selectForDeletion(vs(5, now, DAY), {}, new Set(), now)).toEqual([]);
  });

  it('properties: never a protected or recent-N version, never twice, only live ones; and everything else goes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ createdAt: fc.integer({ min: 0, max: 1000 }), deleted: fc.boolean() }), { maxLength: 40 }),
        fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }), { maxLength: 5 }),
        (rows, keepLast, maxAgeMs, prot) => {
          const versions: RetentionCandidate[] = rows.map((r, i) => ({ version: i + 1, createdAt: r.createdAt, ...(r.deleted ? { deletedAt: 1 } : {}) }));
          const protectedSet = new Set(prot);
          const policy = { ...(keepLast !== undefined ? { keepLast } : {}), ...(maxAgeMs !== undefined ? { maxAgeMs } : {}) };
          const now = 1000;
          const out = selectForDeletion(versions, policy, protectedSet, now);
          expect(new Set(out).size).toBe(out.length);
          const live = versions.filter((v) => v.deletedAt === undefined).sort((a, b) => b.version - a.version);
          const newest = new Set(live.slice(0, keepLast ?? 0).map((v) => v.version));
          for (const v of out) {
            expect(protectedSet.has(v)).toBe(false);
            const rec = versions[v - 1] as RetentionCandidate;
            expect(rec.deletedAt).toBeUndefined();
            if (keepLast !== undefined) expect(newest.has(v)).toBe(false);
            if (maxAgeMs !== undefined) expect(now - rec.createdAt).toBeGreaterThanOrEqual(maxAgeMs);
          }
          if (keepLast === undefined && maxAgeMs === undefined) expect(out).toEqual([]);
          else {
            // Completeness: every live, unprotected version outside both limits is selected.
            for (const v of live) {
              const kept = (keepLast !== undefined && newest.has(v.version)) || (maxAgeMs !== undefined && now - v.createdAt < maxAgeMs) || protectedSet.has(v.version);
              expect(out.includes(v.version)).toBe(!kept);
            }
          }
        },
      ),
    );
  });
});

describe('protectedVersions', () => {
  it('covers active pins, latest per scope and active runs, not ended pins or finished runs', () => {
    const rel = (version: number, scope: Record<string, string>): Release => ({ topic: 't', version, scope, scopeKey: scopeKey(scope), releasedAt: 1, releasedBy: 'x' });
    const pin = (version: number, unpinnedAt?: number): Pin => ({ topic: 't', pinId: `p${version}`, scope: {}, scopeKey: '', version, reason: '', pinnedBy: 'x', pinnedAt: 1, ...(unpinnedAt ? { unpinnedAt } : {}) });
    const run = (version: number, status: RolloutRun['status']): RolloutRun => ({ ...newRun({ topic: 't', runId: `r${version}`, version, plan: { stages: [{ scope: {}, bakeMs: 0 }] }, startedBy: 'x', now: 1 }), status });
    const got = protectedVersions(
      { releases: [rel(1, {}), rel(3, {}), rel(2, { region: 'eu' })], pins: [pin(4), pin(5, 10)] },
      [run(6, 'running'), run(7, 'paused'), run(8, 'completed'), run(9, 'aborted')],
    );
    expect([...got].sort()).toEqual([2, 3, 4, 6, 7]);
  });

  it('protectionOf says why, a pin first, and nothing for a version that may go', () => {
    const rel = (version: number, scope: Record<string, string>): Release => ({ topic: 't', version, scope, scopeKey: scopeKey(scope), releasedAt: 1, releasedBy: 'x' });
    const pin = (version: number, scope: Record<string, string>, unpinnedAt?: number): Pin => ({ topic: 't', pinId: `p${version}`, scope, scopeKey: scopeKey(scope), version, reason: '', pinnedBy: 'x', pinnedAt: 1, ...(unpinnedAt ? { unpinnedAt } : {}) });
    const running = { ...newRun({ topic: 't', runId: 'run-4', version: 4, plan: { stages: [{ scope: {}, bakeMs: 0 }] }, startedBy: 'x', now: 1 }), status: 'running' as const };
    const state = { releases: [rel(1, {}), rel(2, {}), rel(3, { region: 'eu' })], pins: [pin(2, { cluster: 'c1' }), pin(1, {}, 5)] };
    const runs = [running];
    expect(protectionOf(2, state, runs)).toBe('is pinned on scope cluster=c1');
    expect(protectionOf(3, state, runs)).toBe('is the latest version for scope region=eu');
    expect(protectionOf(4, state, runs)).toBe('is inside the active rollout run run-4');
    expect(protectionOf(1, state, runs)).toBeUndefined();
    expect(protectionOf(2, { ...state, pins: [] }, runs)).toBe('is the latest version for scope global');
    for (const v of [1, 2, 3, 4, 5]) expect(protectionOf(v, state, runs) !== undefined).toBe(protectedVersions(state, runs).has(v));
  });
});
