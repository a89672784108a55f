import type { ConsumerIdentity, Pin, Release } from './model.ts';
import { scopeMatches, scopeSpecificity } from './scope.ts';

/**
 * What decides which version a consumer gets: the topic's releases and pins (with their
 * history, so the same function answers "at time T"), and which versions are gone.
 * The consume service, the fallback snapshot reader in the client and the history API
 * all call `resolveVersion` / `candidateVersions` on this.
 */
export interface ResolutionState {
  releases: readonly Release[];
  pins: readonly Pin[];
  /** Versions deleted (retention), with the time they were deleted. */
  deleted?: ReadonlyMap<number, number>;
}

export type Resolution =
  | { version: number; via: 'pin'; pin: Pin }
  | { version: number; via: 'release' };

function activeAt(start: number, end: number | undefined, at: number): boolean {
  return start <= at && (end === undefined || end > at);
}

function existsAt(state: ResolutionState, version: number, at: number): boolean {
  const deletedAt = state.deleted?.get(version);
  return deletedAt === undefined || deletedAt > at;
}

/**
 * The pin that applies to a consumer at `at`: among active pins whose scope matches,
 * the most specific one; on a tie the most recent.
 */
export function applicablePin(state: ResolutionState, identity: ConsumerIdentity, at = Infinity): Pin | undefined {
  let best: Pin | undefined;
  for (const pin of state.pins) {
    if (!activeAt(pin.pinnedAt, pin.unpinnedAt, at) || !scopeMatches(pin.scope, identity)) continue;
    if (
      best === undefined ||
      scopeSpecificity(pin.scope) > scopeSpecificity(best.scope) ||
      (scopeSpecificity(pin.scope) === scopeSpecificity(best.scope) && pin.pinnedAt > best.pinnedAt)
    ) {
      best = pin;
    }
  }
  return best;
}

/**
 * Every version that may be handed to this consumer, best first: the pinned version alone
 * when a pin applies, else each version released to a scope that matches the consumer,
 * newest first. The consume service walks this list back when the newest is not whole.
 */
export function candidateVersions(state: ResolutionState, identity: ConsumerIdentity, at = Infinity): number[] {
  const pin = applicablePin(state, identity, at);
  if (pin) return existsAt(state, pin.version, at) ? [pin.version] : [];
  const seen = new Set<number>();
  for (const r of state.releases) {
    if (activeAt(r.releasedAt, r.withdrawnAt, at) && scopeMatches(r.scope, identity) && existsAt(state, r.version, at)) {
      seen.add(r.version);
    }
  }
  return [...seen].sort((a, b) => b - a);
}

/** The version that applies to this consumer (at `at`, default now), or undefined if none. */
export function resolveVersion(state: ResolutionState, identity: ConsumerIdentity, at = Infinity): Resolution | undefined {
  const pin = applicablePin(state, identity, at);
  if (pin) return existsAt(state, pin.version, at) ? { version: pin.version, via: 'pin', pin } : undefined;
  let best = 0;
  for (const r of state.releases) {
    if (r.version > best && activeAt(r.releasedAt, r.withdrawnAt, at) && scopeMatches(r.scope, identity) && existsAt(state, r.version, at)) {
      best = r.version;
    }
  }
  return best === 0 ? undefined : { version: best, via: 'release' };
}

/**
 * The part of `state` that decides `resolveVersion(state, identity)` now (`at` = Infinity):
 * the active pins, and for each scope the newest active release of a version not deleted
 * (an older release to the same scope can never win). `resolveVersion` on it answers the
 * same as on `state`, for every identity, in a few steps instead of one per release ever
 * made; the consume service computes it once per topic state and resolves every poll on it.
 * Not for `candidateVersions` or a past `at`: those need the history.
 */
export function currentResolution(state: ResolutionState): ResolutionState {
  const newest = new Map<string, Release>();
  for (const r of state.releases) {
    if (r.withdrawnAt !== undefined || !existsAt(state, r.version, Infinity)) continue;
    const cur = newest.get(r.scopeKey);
    if (cur === undefined || r.version > cur.version) newest.set(r.scopeKey, r);
  }
  const pins = state.pins.filter((p) => p.unpinnedAt === undefined);
  return { releases: [...newest.values()], pins, ...(state.deleted === undefined ? {} : { deleted: state.deleted }) };
}

/** Active (not withdrawn) releases at `at`. */
export function activeReleases(state: ResolutionState, at = Infinity): Release[] {
  return state.releases.filter((r) => activeAt(r.releasedAt, r.withdrawnAt, at));
}

/** Active pins at `at`. */
export function activePins(state: ResolutionState, at = Infinity): Pin[] {
  return state.pins.filter((p) => activeAt(p.pinnedAt, p.unpinnedAt, at));
}

/** For each scope with active releases, the newest version released to it ("latest for that scope"). */
export function latestPerScope(state: ResolutionState): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of activeReleases(state)) {
    if (!existsAt(state, r.version, Infinity)) continue;
    const cur = out.get(r.scopeKey);
    if (cur === undefined || r.version > cur) out.set(r.scopeKey, r.version);
  }
  return out;
}
