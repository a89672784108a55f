// Units of the operator commands: plan files, --since / --until, --scope, and the
// rollout status view (stage states, time until the next stage).
import { describe, expect, it } from 'vitest';
import type { RolloutRunInfo } from '@quire/client';
import { QuireError } from '@quire/core';
import { parsePlan, parseScope, parseTime } from './args.ts';
import { runDetails, stageState } from './cli.ts';
import { formatSpan } from './format.ts';

function thrown(fn: () => unknown): QuireError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuireError);
    return e as QuireError;
  }
  throw new Error('expected a QuireError');
}

describe('operator arguments', () => {
  it('reads a plan file: bake as a duration or in ms, scope {} = global', () => {
    expect(parsePlan('{"stages":[{"name":"canary","scope":{"cluster":"canary"},"bake":"0s"},{"scope":{},"bakeMs":3600000}]}')).toEqual({
      stages: [
        { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
        { scope: {}, bakeMs: 3_600_000 },
      ],
    });
    expect(parsePlan('{"stages":[{"bake":"1h30m"}]}').stages[0]).toEqual({ scope: {}, bakeMs: 5_400_000 });
  });

  it('refuses a bad plan, naming the field', () => {
    expect(thrown(() => parsePlan('not json')).field).toBe('plan');
    expect(thrown(() => parsePlan('{"stages":[]}')).field).toBe('plan.stages');
    expect(thrown(() => parsePlan('{"stages":[{"scope":{"a":1}}]}')).field).toBe('plan.stages[0].scope');
    expect(thrown(() => parsePlan('{"stages":[{},{"bake":"soon"}]}')).field).toBe('plan.stages[1].bake');
    expect(thrown(() => parsePlan('{"stages":[{"bakeMS":5}]}')).field).toBe('plan.stages[0].bakeMS');
  });

  it('reads times as a duration ago, an ISO date/time or epoch ms', () => {
    const now = Date.parse('2026-11-25T07:00:00Z');
    expect(parseTime('90m', 'since', now)).toBe(now - 90 * 60_000);
    expect(parseTime('2026-11-24', 'since', now)).toBe(Date.parse('2026-11-24'));
    expect(parseTime('2026-11-25T06:00:00Z', 'since', now)).toBe(now - 3_600_000);
    expect(parseTime('1764054000000', 'since', now)).toBe(1764054000000);
    expect(thrown(() => parseTime('yesterday', 'since', now)).field).toBe('since');
    expect(thrown(() => parseTime('2026-13-45', 'until', now)).field).toBe('until');
  });

  it('reads one scope; absent or "global" is the global scope', () => {
    expect(parseScope(undefined)).toEqual({});
    expect(parseScope('global')).toEqual({});
    expect(parseScope('region=eu-west-1,cluster=c')).toEqual({ region: 'eu-west-1', cluster: 'c' });
    expect(thrown(() => parseScope('region')).field).toBe('scope');
  });
});

describe('rollout status view', () => {
  const now = Date.parse('2026-11-25T07:00:00Z');
  const run: RolloutRunInfo = {
    topic: 't',
    runId: 'r1',
    version: 4,
    plan: {
      stages: [
        { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
        { name: 'eu', scope: { region: 'eu-west-1' }, bakeMs: 600_000 },
        { scope: {}, bakeMs: 3_600_000 },
      ],
    },
    status: 'running',
    stageIndex: 0,
    stageReleasedAt: now - 1000,
    nextStageAt: now - 1000 + 600_000,
    createdAt: now - 1000,
    updatedAt: now - 1000,
    startedBy: 'ops',
  };

  it('spans', () => {
    expect(formatSpan(0)).toBe('0s');
    expect(formatSpan(12_300)).toBe('13s');
    expect(formatSpan(599_000)).toBe('9m59s');
    expect(formatSpan(3_600_000)).toBe('1h0m');
    expect(formatSpan(2 * 86_400_000 + 3 * 3_600_000 + 5000)).toBe('2d3h');
  });

  it('shows each stage with its state and the time until the next one', () => {
    expect([0, 1, 2].map((i) => stageState(run, i, now))).toEqual(['released', 'next in 9m59s', 'pending']);
    const text = runDetails(run, now);
    expect(text).toMatch(/^run r1: t v4 {2}running {2}stage 1\/3\n/);
    expect(text).toMatch(/^next stage 2 in 9m59s \(2026-11-25 07:09:59Z\)$/m);
    expect(text).toMatch(/^1 +canary +cluster=canary +0s +released$/m);
    expect(text).toMatch(/^2 +eu +region=eu-west-1 +10m +next in 9m59s$/m);
    expect(text).toMatch(/^3 +- +global +1h +pending$/m);
  });

  it('paused, due and aborted runs', () => {
    expect(stageState({ ...run, status: 'paused' }, 1, now)).toBe('next (paused)');
    expect(stageState(run, 1, now + 700_000)).toBe('next, due now');
    const aborted = { ...run, status: 'aborted', stageIndex: 1 };
    expect([0, 1, 2].map((i) => stageState(aborted, i, now))).toEqual(['withdrawn', 'withdrawn', 'cancelled']);
  });
});
