import type { RolloutRun, Scope } from './model.ts';
import { activeReleases, applicablePin, type ResolutionState } from './resolve.ts';
import { isActiveRun } from './rollout.ts';
import { scopeMatches } from './scope.ts';

/** What a rollback within a scope would do: pin `target` instead of `current`. */
export interface RollbackDecision {
  /** The version currently applied in the scope (the one being rolled back). */
  current: number;
  /** The last version fully rolled out before `current`: the version to pin. */
  target: number;
  /**
   * The scopes `target` had to be released to (each covered by one of its active
   * releases) to count as fully rolled out.
   */
  required: Scope[];
}

/** Why there is nothing to roll back to (for the error message). */
export type RollbackRefusal =
  | { reason: 'no-current'; scope: Scope }
  | { reason: 'no-target'; scope: Scope; current: number; required: Scope[] };

/** `outer` covers `inner` when every consumer matching `inner` also matches `outer`. */
export function scopeCovers(outer: Scope, inner: Scope): boolean {
  return scopeMatches(outer, inner);
}

/** One scope covers the other (a release to either says something about the whole of, or a part of, the other). */
export function scopesNested(a: Scope, b: Scope): boolean {
  return scopeCovers(a, b) || scopeCovers(b, a);
}

/**
 * The decision behind "roll back" for the consumers in `scope` (`{}` = everyone).
 *
 * - **current**: the version those consumers run now — the version of the pin that applies
 *   to the scope itself when there is one, else the highest live (not deleted) version with
 *   an active release to a scope nested with `scope` (covering it, or inside it: a release to
 *   `{cluster: canary}` counts for a global rollback; one to `{region: eu}` does not count
 *   for a rollback of `{cluster: canary}`).
 * - **fully rolled out**: a live version, not inside an active rollout run, released (by an
 *   active release to a covering scope) to every scope `current` reached that is nested
 *   with `scope` (each narrowed to `scope`). When `current` reached none of them (say, it was
 *   pinned), that is `scope` itself. For a topic without rollouts (every version released
 *   globally) this is "released globally", or for a scoped rollback "released to a scope
 *   covering that scope".
 * - **target**: the highest fully rolled-out version below `current`.
 *
 * Pure: the publish service pins `target`; the UI shows it before the operator clicks.
 */
export function rollbackTarget(
  state: ResolutionState,
  scope: Scope,
  runs: readonly RolloutRun[] = [],
): { ok: true; decision: RollbackDecision } | { ok: false; refusal: RollbackRefusal } {
  const live = (v: number) => !state.deleted?.has(v);
  const releases = activeReleases(state).filter((r) => live(r.version));
  const pin = applicablePin(state, scope);
  let current = 0;
  if (pin !== undefined && live(pin.version)) current = pin.version;
  else for (const r of releases) if (r.version > current && scopesNested(r.scope, scope)) current = r.version;
  if (current === 0) return { ok: false, refusal: { reason: 'no-current', scope } };

  // The scopes current reached, narrowed to the rollback scope; dedupe by content.
  const required: Scope[] = [];
  const seen = new Set<string>();
  for (const r of releases) {
    if (r.version !== current || !scopesNested(r.scope, scope)) continue;
    const narrowed = { ...r.scope, ...scope };
    const key = JSON.stringify(Object.entries(narrowed).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    if (!seen.has(key)) required.push(narrowed);
    seen.add(key);
  }
  if (required.length === 0) required.push({ ...scope });

  const inRun = new Set(runs.filter(isActiveRun).map((r) => r.version));
  const byVersion = new Map<number, Scope[]>();
  for (const r of releases) {
    if (r.version >= current || inRun.has(r.version)) continue;
    const list = byVersion.get(r.version);
    if (list === undefined) byVersion.set(r.version, [r.scope]);
    else list.push(r.scope);
  }
  const candidates = [...byVersion.keys()].sort((a, b) => b - a);
  for (const v of candidates) {
    const scopes = byVersion.get(v) as Scope[];
    if (required.every((need) => scopes.some((s) => scopeCovers(s, need)))) {
      return { ok: true, decision: { current, target: v, required } };
    }
  }
  return { ok: false, refusal: { reason: 'no-target', scope, current, required } };
}
