import type { RetentionPolicy } from './model.ts';

export interface RetentionCandidate {
  version: number;
  createdAt: number;
  deletedAt?: number;
}

/**
 * Versions to delete under a retention policy. A live version is kept when it is among
 * the newest `keepLast` live versions, or younger than `maxAgeMs`, or protected (pinned,
 * latest for some scope, inside an active rollout run). With both limits set a version
 * must be outside both to go; with neither, nothing goes. Returns versions ascending.
 */
export function selectForDeletion(
  versions: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  protectedVersions: ReadonlySet<number>,
  now: number,
): number[] {
  if (policy.keepLast === undefined && policy.maxAgeMs === undefined) return [];
  const live = versions.filter((v) => v.deletedAt === undefined).sort((a, b) => b.version - a.version);
  const out: number[] = [];
  live.forEach((v, rank) => {
    const byCount = policy.keepLast !== undefined && rank < policy.keepLast;
    const byAge = policy.maxAgeMs !== undefined && now - v.createdAt < policy.maxAgeMs;
    if (byCount || byAge || protectedVersions.has(v.version)) return;
    out.push(v.version);
  });
  return out.sort((a, b) => a - b);
}

import type { RolloutRun } from './model.ts';
import { activePins, latestPerScope, type ResolutionState } from './resolve.ts';
import { isActiveRun } from './rollout.ts';

/** Versions retention must never delete: pinned, latest for any scope, or inside an active run. */
export function protectedVersions(state: ResolutionState, runs: readonly RolloutRun[]): Set<number> {
  const out = new Set<number>();
  for (const p of activePins(state)) out.add(p.version);
  for (const v of latestPerScope(state).values()) out.add(v);
  for (const r of runs) if (isActiveRun(r)) out.add(r.version);
  return out;
}
