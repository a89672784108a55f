/**
 * Fleet propagation from the instances' apply reports: the share of instances per version,
 * the same per scope (a scope counts the instances whose identity it matches, with the
 * core's `scopeMatches`, the function the services decide with), and the failures.
 */
import { describeScope, scopeMatches } from '@quire/core';
import type { FleetReport, Scope } from '@quire/core';

export interface VersionShare {
  version: number;
  count: number;
  /** 0..1 of the group's instances. */
  share: number;
}

export interface ScopeFleet {
  label: string;
  scope: Scope;
  total: number;
  versions: VersionShare[];
}

export interface FleetFailure {
  instance: string;
  identity: Record<string, string>;
  version: number;
  failedVersion: number;
  error: string;
  reportedAt: number;
}

export interface FleetSummary {
  total: number;
  versions: VersionShare[];
  scopes: ScopeFleet[];
  failures: FleetFailure[];
  /** Every version seen, newest first (the chart's series). */
  allVersions: number[];
}

function shares(reports: readonly FleetReport[]): VersionShare[] {
  const counts = new Map<number, number>();
  for (const r of reports) counts.set(r.version, (counts.get(r.version) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[0] - a[0])
    .map(([version, count]) => ({ version, count, share: reports.length === 0 ? 0 : count / reports.length }));
}

/** Aggregate reports; `scopes` are the groups to show (e.g. the rollout plan's stages and pinned scopes). */
export function aggregateFleet(reports: readonly FleetReport[], scopes: readonly { scope: Scope; label?: string }[] = []): FleetSummary {
  const seen = new Set<string>();
  const groups: ScopeFleet[] = [];
  for (const { scope, label } of scopes) {
    const key = describeScope(scope);
    if (seen.has(key)) continue;
    seen.add(key);
    const members = reports.filter((r) => scopeMatches(scope, r.identity));
    groups.push({ label: label ?? key, scope, total: members.length, versions: shares(members) });
  }
  const failures: FleetFailure[] = reports
    .filter((r) => r.failedVersion !== undefined)
    .map((r) => ({ instance: r.instance, identity: r.identity, version: r.version, failedVersion: r.failedVersion as number, error: r.error ?? '', reportedAt: r.reportedAt }))
    .sort((a, b) => b.reportedAt - a.reportedAt);
  const allVersions = [...new Set(reports.map((r) => r.version))].sort((a, b) => b - a);
  return { total: reports.length, versions: shares(reports), scopes: groups, failures, allVersions };
}

/** One point of the live chart: instances per version at a time. */
export interface FleetPoint {
  at: number;
  [version: `v${number}`]: number;
}

/** Append a sample to the chart history, keeping at most `max` points. */
export function appendSample(history: readonly FleetPoint[], at: number, summary: FleetSummary, max = 60): FleetPoint[] {
  const point: FleetPoint = { at };
  for (const v of summary.versions) point[`v${v.version}`] = v.count;
  const next = [...history, point];
  return next.length > max ? next.slice(next.length - max) : next;
}
