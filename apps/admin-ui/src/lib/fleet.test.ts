import { describe, expect, it } from 'vitest';
import type { FleetReport } from '@quire/core';
import { aggregateFleet, appendSample } from './fleet.ts';

const r = (instance: string, identity: Record<string, string>, version: number, extra: Partial<FleetReport> = {}): FleetReport => ({
  topic: 't',
  instance,
  identity: { instance, ...identity },
  version,
  reportedAt: 1000,
  ...extra,
});

const reports = [
  r('a', { cluster: 'canary', region: 'eu' }, 2),
  r('b', { cluster: 'main', region: 'eu' }, 1),
  r('c', { cluster: 'main', region: 'us' }, 1, { failedVersion: 2, error: 'decode: bad json', reportedAt: 2000 }),
  r('d', { cluster: 'main', region: 'us' }, 1),
];

describe('aggregateFleet', () => {
  it('gives the share of instances per version, newest version first', () => {
    const s = aggregateFleet(reports);
    expect(s.total).toBe(4);
    expect(s.versions).toEqual([
      { version: 2, count: 1, share: 0.25 },
      { version: 1, count: 3, share: 0.75 },
    ]);
    expect(s.allVersions).toEqual([2, 1]);
  });
  it('groups per scope with the same matching rule as the services (every listed attribute equal)', () => {
    const s = aggregateFleet(reports, [{ scope: { cluster: 'canary' }, label: 'canary' }, { scope: { region: 'us' } }, { scope: {} }, { scope: { region: 'us' } }]);
    expect(s.scopes.map((g) => [g.label, g.total])).toEqual([
      ['canary', 1],
      ['region=us', 2],
      ['global', 4],
    ]);
    expect(s.scopes[1]?.versions).toEqual([{ version: 1, count: 2, share: 1 }]);
  });
  it('lists the instances that failed to apply, with their error', () => {
    expect(aggregateFleet(reports).failures).toEqual([
      { instance: 'c', identity: { instance: 'c', cluster: 'main', region: 'us' }, version: 1, failedVersion: 2, error: 'decode: bad json', reportedAt: 2000 },
    ]);
  });
  it('an empty fleet has no shares', () => {
    expect(aggregateFleet([], [{ scope: {} }])).toEqual({ total: 0, versions: [], scopes: [{ label: 'global', scope: {}, total: 0, versions: [] }], failures: [], allVersions: [] });
  });
  it('keeps a bounded chart history of samples', () => {
    let h = appendSample([], 1, aggregateFleet(reports), 2);
    h = appendSample(h, 2, aggregateFleet(reports.slice(0, 1)), 2);
    h = appendSample(h, 3, aggregateFleet([]), 2);
    expect(h).toEqual([{ at: 2, v2: 1 }, { at: 3 }]);
  });
});
