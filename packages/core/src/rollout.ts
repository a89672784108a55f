import { Code, QuireError } from './errors.ts';
import type { RolloutPlan, RolloutRun } from './model.ts';

/**
 * The rollout state machine, pure: given a run and the time (and, for health-gated
 * plans, the current stage's apply reports) → the next action. The scheduler executes the
 * action (release a stage's scope, …) and stores the run returned by `applyAction` with
 * compare-and-set on `revision`, so a stage is applied once even with several replicas.
 */

export interface StageHealth {
  /** Instances in the current stage's scopes that reported on the run's version. */
  instances: number;
  /** Of those, instances whose last apply of the run's version failed. */
  failed: number;
}

export type RolloutAction =
  | { kind: 'none' }
  | { kind: 'wait'; until: number }
  | { kind: 'release'; stage: number }
  | { kind: 'complete' }
  | { kind: 'pause'; reason: string }
  | { kind: 'rollback'; reason: string };

export function isActiveRun(run: RolloutRun): boolean {
  return run.status === 'running' || run.status === 'paused';
}

export function newRun(args: {
  topic: string;
  runId: string;
  version: number;
  plan: RolloutPlan;
  startedBy: string;
  now: number;
}): RolloutRun {
  return {
    topic: args.topic,
    runId: args.runId,
    version: args.version,
    plan: args.plan,
    status: 'running',
    stageIndex: -1,
    stageReleasedAt: args.now,
    createdAt: args.now,
    updatedAt: args.now,
    startedBy: args.startedBy,
    revision: 0,
  };
}

/** When the next stage is due, or undefined when there is none. */
export function nextStageDueAt(run: RolloutRun): number | undefined {
  const next = run.plan.stages[run.stageIndex + 1];
  if (!next) return undefined;
  return run.stageIndex < 0 ? run.stageReleasedAt : run.stageReleasedAt + next.bakeMs;
}

export function nextAction(run: RolloutRun, now: number, health?: StageHealth): RolloutAction {
  if (run.status !== 'running') return { kind: 'none' };
  const gate = run.plan.health;
  if (gate && health && run.stageIndex >= 0 && health.instances >= gate.minInstances && health.instances > 0) {
    const ratio = health.failed / health.instances;
    if (ratio > gate.maxFailureRatio) {
      const reason =
        `health gate: ${health.failed} of ${health.instances} instances (${(ratio * 100).toFixed(1)} %) ` +
        `failed to apply version ${run.version} at stage ${run.stageIndex + 1}, over the ${(gate.maxFailureRatio * 100).toFixed(1)} % limit`;
      return gate.action === 'pause' ? { kind: 'pause', reason } : { kind: 'rollback', reason };
    }
  }
  const last = run.plan.stages.length - 1;
  if (run.stageIndex >= last) return { kind: 'complete' };
  const due = nextStageDueAt(run) as number;
  if (now >= due) return { kind: 'release', stage: run.stageIndex + 1 };
  return { kind: 'wait', until: due };
}

function bump(run: RolloutRun, now: number, patch: Partial<RolloutRun>): RolloutRun {
  return { ...run, ...patch, updatedAt: now, revision: run.revision + 1 };
}

/** The run after the scheduler executed `action`. */
export function applyAction(run: RolloutRun, action: RolloutAction, now: number): RolloutRun {
  switch (action.kind) {
    case 'none':
    case 'wait':
      return run;
    case 'release':
      if (action.stage !== run.stageIndex + 1) {
        throw new QuireError(Code.ABORTED, `stage ${action.stage + 1} is not the next stage of run ${run.runId}`);
      }
      return bump(run, now, { stageIndex: action.stage, stageReleasedAt: now });
    case 'complete':
      return bump(run, now, { status: 'completed' });
    case 'pause':
      return bump(run, now, { status: 'paused', pausedAt: now, reason: action.reason });
    case 'rollback':
      return bump(run, now, { status: 'rolled_back', reason: action.reason });
  }
}

function requireStatus(run: RolloutRun, allowed: RolloutRun['status'][], verb: string): void {
  if (!allowed.includes(run.status)) {
    throw new QuireError(Code.FAILED_PRECONDITION, `cannot ${verb} run ${run.runId}: it is ${run.status}`, { field: 'runId' });
  }
}

/** Operator: pause a running run. */
export function pauseRun(run: RolloutRun, now: number, reason: string): RolloutRun {
  requireStatus(run, ['running'], 'pause');
  return bump(run, now, { status: 'paused', pausedAt: now, reason });
}

/** Operator: resume a paused run; the bake clock does not count the paused time. */
export function resumeRun(run: RolloutRun, now: number): RolloutRun {
  requireStatus(run, ['paused'], 'resume');
  const paused = run.pausedAt === undefined ? 0 : Math.max(0, now - run.pausedAt);
  const { pausedAt: _p, reason: _r, ...rest } = run;
  return bump(rest, now, { status: 'running', stageReleasedAt: run.stageReleasedAt + paused });
}

/** Operator: release the next stage now (running or paused). Returns the run and the stage to release. */
export function advanceRun(run: RolloutRun, now: number): { run: RolloutRun; stage: number } {
  requireStatus(run, ['running', 'paused'], 'advance');
  const stage = run.stageIndex + 1;
  if (stage >= run.plan.stages.length) {
    throw new QuireError(Code.FAILED_PRECONDITION, `run ${run.runId} has no stage left to advance to`, { field: 'runId' });
  }
  const last = stage === run.plan.stages.length - 1;
  return { run: bump(run, now, { stageIndex: stage, stageReleasedAt: now, status: last ? 'completed' : run.status }), stage };
}

/** Operator: abort; the caller withdraws the version from every scope the run reached. */
export function abortRun(run: RolloutRun, now: number, reason: string): RolloutRun {
  requireStatus(run, ['running', 'paused'], 'abort');
  return bump(run, now, { status: 'aborted', reason });
}
