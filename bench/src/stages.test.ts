import { describe, expect, it } from 'vitest';
import { stageBreakdown, stagesOf, type PublishMark, type StageEvent } from './stages.ts';

const MS = 1e6;

describe('propagation stage breakdown', () => {
  const a: PublishMark = { topic: 't', version: 2, t0: 1000 * MS, callMs: 10, firstReceivedMs: 25, firstMs: 30, lastReceivedMs: 45, lastMs: 50 };
  const b: PublishMark = { topic: 't', version: 3, t0: 2000 * MS, callMs: 20, firstReceivedMs: 50, firstMs: 60, lastReceivedMs: 80, lastMs: 90 };
  const events: StageEvent[] = [
    { s: 'changed', topic: 't', ns: 900 * MS }, // before the publish: ignored
    { s: 'hint', topic: 't', ns: 1005 * MS }, // commit hint
    { s: 'hint', topic: 'other', ns: 1006 * MS }, // another topic: ignored
    { s: 'hint', topic: 't', ns: 1012 * MS }, // release hint
    { s: 'changed', topic: 't', ns: 1020 * MS },
    { s: 'hint', topic: 't', ns: 1024 * MS }, // after the reload: not "the last before it"
    { s: 'answered', topic: 't', version: 2, first: 1022 * MS, last: 1022 * MS, count: 1, loopFree: 1023 * MS },
    { s: 'answered', topic: 't', version: 2, first: 1022 * MS, last: 1040 * MS, count: 100, loopFree: 1042 * MS }, // the running total
    { s: 'hint', topic: 't', ns: 2008 * MS },
    { s: 'changed', topic: 't', ns: 2040 * MS },
    { s: 'answered', topic: 't', version: 3, first: 2045 * MS, last: 2070 * MS, count: 100, loopFree: 2071 * MS },
  ];

  it('takes each stage of a publish within its window, from the start of the call', () => {
    expect(stagesOf(a, events, b.t0)).toEqual([10, 5, 12, 20, 22, 40, 42, 25, 30, 45, 50]);
    expect(stagesOf(b, events)).toEqual([20, 8, 8, 40, 45, 70, 71, 50, 60, 80, 90]);
  });

  it('a stage not seen is NaN, and left out of the medians', () => {
    const c: PublishMark = { ...b, topic: 'quiet' };
    expect(stagesOf(c, events).slice(1, 6).every(Number.isNaN)).toBe(true);
    const rows = stageBreakdown([c, a], events);
    expect(rows.map((r) => r.seen)).toEqual([2, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
  });

  it('medians of the stages and of the deltas between consecutive stages', () => {
    const rows = stageBreakdown([b, a], events);
    const reloaded = rows.find((r) => r.stage === 'consume service: topic reloaded, held polls woken');
    expect(reloaded?.fromStart.median).toBe(30);
    // a: 20 − 12, b: 40 − 8
    expect(reloaded?.delta.median).toBe(20);
    expect(reloaded?.delta.runs).toEqual([8, 32]);
    // The hint may come before the call returns: a negative delta.
    expect(rows[1]?.delta.runs).toEqual([-5, -12]);
  });
});
