import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuireError } from './errors.ts';
import type { RolloutPlan, RolloutRun } from './model.ts';
import { abortRun, advanceRun, applyAction, newRun, nextAction, nextStageDueAt, pauseRun, resumeRun } from './rollout.ts';

const plan: RolloutPlan = {
  stages: [
    { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
    { name: 'eu', scope: { region: 'eu-west-1' }, bakeMs: 10_000 },
    { name: 'global', scope: {}, bakeMs: 30_000 },
  ],
};
const start = (p: RolloutPlan = plan) => newRun({ topic: 't', runId: 'r1', version: 7, plan: p, startedBy: 'op', now: 1000 });

/** Drive the scheduler loop: apply each due action until it says wait / none. */
function tick(run: RolloutRun, now: number): { run: RolloutRun; released: number[] } {
  const released: number[] = [];
  for (;;) {
    const a = nextAction(run, now);
    if (a.kind === 'none' || a.kind === 'wait') return { run, released };
    if (a.kind === 'release') released.push(a.stage);
    run = applyAction(run, a, now);
  }
}

describe('rollout state machine', () => {
  it('releases stage 1 at once, each later stage after its bake time, then completes', () => {
    let { run, released } = tick(start(), 1000);
    expect(released).toEqual([0]);
    expect(nextAction(run, 5000)).toEqual({ kind: 'wait', until: 11_000 });
    ({ run, released } = tick(run, 11_000));
    expect(released).toEqual([1]);
    ({ run, released } = tick(run, 40_999));
    expect(released).toEqual([]);
    ({ run, released } = tick(run, 41_000));
    expect(released).toEqual([2]);
    expect(run.status).toBe('completed');
    expect(nextAction(run, 99_999)).toEqual({ kind: 'none' });
  });

  it('pause stops the clock; resume does not count paused time', () => {
    let { run } = tick(start(), 1000);
    run = pauseRun(run, 5000, 'looking at graphs');
    expect(nextAction(run, 50_000)).toEqual({ kind: 'none' });
    run = resumeRun(run, 20_000);
    expect(run.status).toBe('running');
    expect(run.reason).toBeUndefined();
    expect(nextStageDueAt(run)).toBe(26_000);
  });

  it('advance releases the next stage now; the last advance completes the run', () => {
    let { run } = tick(start(), 1000);
    let r = advanceRun(run, 2000);
    expect(r.stage).toBe(1);
    run = r.run;
    r = advanceRun(run, 2001);
    expect(r.stage).toBe(2);
    expect(r.run.status).toBe('completed');
    expect(() => advanceRun(r.run, 3000)).toThrow(QuireError);
  });

  it('abort and invalid transitions', () => {
    const { run } = tick(start(), 1000);
    const aborted = abortRun(run, 2000, 'bad rows');
    expect(aborted.status).toBe('aborted');
    expect(() => abortRun(aborted, 3000, 'again')).toThrow(/cannot abort run r1: it is aborted/);
    expect(() => resumeRun(run, 3000)).toThrow(/cannot resume/);
    try {
      pauseRun(aborted, 1, 'x');
    } catch (e) {
      expect((e as QuireError).code).toBe('FAILED_PRECONDITION');
    }
  });

  it('health gate pauses or rolls back with a reason, only over the minimum instance count', () => {
    const gated = (action: 'pause' | 'rollback') => tick(start({ ...plan, health: { maxFailureRatio: 0.05, minInstances: 20, action } }), 1000).run;
    expect(nextAction(gated('pause'), 2000, { instances: 10, failed: 5 }).kind).toBe('wait');
    const a = nextAction(gated('pause'), 2000, { instances: 40, failed: 3 });
    expect(a.kind).toBe('pause');
    expect(a.kind === 'pause' && a.reason).toMatch(/3 of 40 instances \(7\.5 %\) failed to apply version 7 at stage 1/);
    expect(nextAction(gated('rollback'), 2000, { instances: 40, failed: 3 }).kind).toBe('rollback');
    expect(nextAction(gated('rollback'), 2000, { instances: 40, failed: 2 }).kind).toBe('wait');
  });

  it('a release action for a stage other than the next one is refused (no double advance)', () => {
    const { run } = tick(start(), 1000);
    expect(() => applyAction(run, { kind: 'release', stage: 0 }, 2000)).toThrow(/not the next stage/);
  });

  it('property: whatever the tick times, every stage is released exactly once and in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 40 }),
        (bakes, steps) => {
          const p: RolloutPlan = { stages: bakes.map((b, i) => ({ scope: { s: String(i) }, bakeMs: b })) };
          let run = start(p);
          let now = 1000;
          const all: number[] = [];
          for (const s of [0, ...steps]) {
            now += s;
            const t = tick(run, now);
            run = t.run;
            all.push(...t.released);
          }
          // Stages are released at tick times, so after one more tick a full plan's bake time later, the run is done.
          const total = bakes.slice(1).reduce((a, b) => a + b, 0);
          for (let i = 0; i < bakes.length; i++) {
            now += total + 1;
            const t = tick(run, now);
            run = t.run;
            all.push(...t.released);
          }
          expect(run.status).toBe('completed');
          expect(all).toEqual(bakes.map((_, i) => i));
          expect(run.revision).toBeGreaterThanOrEqual(all.length);
        },
      ),
    );
  });
});
