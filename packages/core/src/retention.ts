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
import { describeScope } from './scope.ts';

/**
 * Versions neither retention nor an operator may delete, each with why (a phrase after
 * "version N …"): pinned (first), inside an active rollout run, or latest for some scope.
 */
export function protections(state: ResolutionState, runs: readonly RolloutRun[]): Map<number, string> {
  const out = new Map<number, string>();
  const add = (version: number, why: string) => {
    if (!out.has(version)) out.set(version, why);
  };
  for (const p of activePins(state)) add(p.version, `is pinned on scope ${describeScope(p.scope)}`);
  for (const r of runs) if (isActiveRun(r)) add(r.version, `is inside the active rollout run ${r.runId}`);
  for (const [key, v] of latestPerScope(state)) add(v, `is the latest version for scope ${key === '' ? 'global' : key}`);
  return out;
}

/** Versions retention must never delete: pinned, latest for any scope, or inside an active run. */
export function protectedVersions(state: ResolutionState, runs: readonly RolloutRun[]): Set<number> {
  return new Set(protections(state, runs).keys());
}

/** Why `version` may not be deleted, or undefined when it may (the rule of `protectedVersions`). */
export function protectionOf(version: number, state: ResolutionState, runs: readonly RolloutRun[]): string | undefined {
  return protections(state, runs).get(version);
}
