import { describe, expect, it } from 'vitest';
import type { RolloutPlan, RolloutRun } from '@quire/core';
import { formatCountdown, formatDuration, parseDuration, stageViews, type RunView } from './countdown.ts';

const plan: RolloutPlan = {
  stages: [
    { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
    { name: 'eu', scope: { region: 'eu' }, bakeMs: 600_000 },
    { scope: {}, bakeMs: 1_800_000 },
  ],
};
function run(over: Partial<RolloutRun> & { nextStageAt?: number }): RunView {
  return { topic: 't', runId: 'r', version: 3, plan, status: 'running', stageIndex: 0, stageReleasedAt: 1000, createdAt: 1000, updatedAt: 1000, startedBy: 'ops', revision: 1, ...over };
}

describe('stageViews', () => {
  it('shows released, current, next (with its due time) and pending stages of a running run', () => {
    const v = stageViews(run({ stageIndex: 1, nextStageAt: 5000 }));
    expect(v.map((s) => s.state)).toEqual(['released', 'current', 'next']);
    expect(v[2]?.dueAt).toBe(5000);
    expect(v[2]?.name).toBe('stage 3');
    expect(v[0]?.dueAt).toBeUndefined();
  });
  it('a paused run has a next stage but no countdown', () => {
    const v = stageViews(run({ status: 'paused', nextStageAt: 5000 }));
    expect(v.map((s) => s.state)).toEqual(['current', 'next', 'pending']);
    expect(v[1]?.dueAt).toBeUndefined();
  });
  it('a completed run has every stage released; an aborted one shows its released stages withdrawn', () => {
    expect(stageViews(run({ status: 'completed', stageIndex: 2 })).map((s) => s.state)).toEqual(['released', 'released', 'released']);
    expect(stageViews(run({ status: 'aborted', stageIndex: 1 })).map((s) => s.state)).toEqual(['withdrawn', 'withdrawn', 'pending']);
  });
});

describe('countdown and durations', () => {
  it('counts down in the largest useful units', () => {
    expect(formatCountdown(1000, 2000)).toBe('now');
    expect(formatCountdown(45_000, 0)).toBe('45s');
    expect(formatCountdown(44_001, 0)).toBe('45s');
    expect(formatCountdown(245_000, 0)).toBe('4m 05s');
    expect(formatCountdown(7_380_000, 0)).toBe('2h 03m');
    expect(formatCountdown(3 * 86_400_000 + 4 * 3_600_000, 0)).toBe('3d 4h');
  });
  it('formats and parses bake times', () => {
    expect(formatDuration(0)).toBe('0');
    expect(formatDuration(600_000)).toBe('10m');
    expect(formatDuration(5_400_000)).toBe('1h 30m');
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1h 30m')).toBe(5_400_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('15')).toBe(900_000);
    expect(parseDuration('ten minutes')).toBeUndefined();
    expect(parseDuration('10x')).toBeUndefined();
  });
});
