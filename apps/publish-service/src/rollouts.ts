/**
 * Staged rollouts: start a run of a topic version (with the topic's plan or an explicit
 * one), operator controls (pause / resume / advance / abort, each with a reason and an
 * audit entry), get / list, and `step` — one move of the pure state machine in
 * `@quire/core` (`nextAction` → execute → `applyAction`) used by the scheduler.
 *
 * Exactly-once stages: every change of a run is stored with compare-and-set on its
 * `revision`. A stage's release is an idempotent upsert written BEFORE the run records the
 * stage, so a lost race at worst repeats an upsert; the stage is recorded (and audited) once.
 */
import { randomUUID } from 'node:crypto';
import {
  Code,
  QuireError,
  abortRun,
  advanceRun,
  applyAction,
  isActiveRun,
  newRun,
  nextAction,
  pauseRun,
  resumeRun,
  scopeKey,
  scopeMatches,
  systemClock,
  validateRolloutPlan,
  validateTopicName,
  validateVersionNumber,
} from '@quire/core';
import type { AuditEntry, Clock, MetadataStore, RolloutAction, RolloutPlan, RolloutRun, StageHealth, Topic } from '@quire/core';

export interface RolloutServiceOptions {
  store: MetadataStore;
  clock?: Clock;
  /** Compare-and-set attempts of an operator control before ABORTED. Default 5. */
  attempts?: number;
}

/** Who executes a step: an operator, or the scheduler with its lease's fencing epoch. */
export interface StepContext {
  actor: string;
  epoch?: number;
}

export type RolloutControl = 'pause' | 'resume' | 'advance' | 'abort';
export const ROLLOUT_CONTROLS: readonly RolloutControl[] = ['pause', 'resume', 'advance', 'abort'];

const REASON_MAX = 1024;

export class RolloutService {
  readonly #store: MetadataStore;
  readonly #clock: Clock;
  readonly #attempts: number;

  constructor(options: RolloutServiceOptions) {
    this.#store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.#attempts = options.attempts ?? 5;
  }

  /**
   * Start a run of `version` with `plan` (validated) or, when absent, the topic's plan.
   * Stage 1 is released at once. FAILED_PRECONDITION when there is no plan, the version
   * is deleted, or a run of the same version is already active.
   */
  async start(topicName: unknown, version: unknown, plan: unknown, actor: string): Promise<RolloutRun> {
    const who = validateActor(actor);
    const topic = await this.#requireTopic(topicName);
    const v = validateVersionNumber(version);
    const record = await this.#store.getVersion(topic.name, v);
    if (record === undefined) throw QuireError.notFound(`version ${v} of topic ${topic.name}`, 'version');
    if (record.deletedAt !== undefined) {
      throw new QuireError(Code.FAILED_PRECONDITION, `version: ${v} of ${topic.name} was deleted`, { field: 'version' });
    }
    let thePlan: RolloutPlan;
    if (plan !== undefined && plan !== null) thePlan = validateRolloutPlan(plan, 'plan');
    else if (topic.rolloutPlan !== undefined) thePlan = topic.rolloutPlan;
    else {
      throw new QuireError(Code.FAILED_PRECONDITION, `plan: topic ${topic.name} has no rollout plan; give one`, { field: 'plan' });
    }
    const active = (await this.#store.listRuns(topic.name)).find((r) => isActiveRun(r) && r.version === v);
    if (active !== undefined) {
      throw new QuireError(Code.FAILED_PRECONDITION, `version: run ${active.runId} of version ${v} is already ${active.status}`, {
        field: 'version',
      });
    }
    const run = newRun({ topic: topic.name, runId: randomUUID(), version: v, plan: thePlan, startedBy: who, now: this.#clock.now() });
    await this.#store.createRun(run);
    await this.#audit(who, 'rollout.start', run, { plan: thePlan });
    // Stage 1 at once (the scheduler would do it on its next tick; the CAS keeps it single).
    return (await this.step(run, { actor: who })) ?? (await this.#requireRun(run.topic, run.runId));
  }

  /** The publish path's hook: start a run of a just-published version with the topic's plan. */
  async startForPublish(topic: string, version: number, actor: string): Promise<RolloutRun> {
    return this.start(topic, version, undefined, actor);
  }

  async get(topicName: unknown, runId: unknown): Promise<RolloutRun> {
    const topic = await this.#requireTopic(topicName);
    return this.#requireRun(topic.name, validateRunId(runId));
  }

  /** The topic's runs, newest first; only running / paused ones with `activeOnly`. */
  async list(topicName: unknown, activeOnly = false): Promise<RolloutRun[]> {
    const topic = await this.#requireTopic(topicName);
    const runs = await this.#store.listRuns(topic.name);
    return activeOnly ? runs.filter(isActiveRun) : runs;
  }

  /** Operator control with a reason (required for pause and abort). */
  async control(topicName: unknown, runId: unknown, action: unknown, reason: unknown, actor: string): Promise<RolloutRun> {
    const who = validateActor(actor);
    const topic = await this.#requireTopic(topicName);
    const id = validateRunId(runId);
    if (typeof action !== 'string' || !(ROLLOUT_CONTROLS as readonly string[]).includes(action)) {
      throw QuireError.invalid('action', `must be one of ${ROLLOUT_CONTROLS.join(', ')}`);
    }
    const why = validateReason(reason, action === 'pause' || action === 'abort');
    switch (action as RolloutControl) {
      case 'pause':
        return this.#cas(topic.name, id, who, 'rollout.pause', why, (run, now) => pauseRun(run, now, why as string));
      case 'resume':
        return this.#cas(topic.name, id, who, 'rollout.resume', why, (run, now) => resumeRun(run, now));
      case 'advance':
        return this.#advance(topic.name, id, who, why);
      case 'abort':
        return this.#stop(topic.name, id, who, why as string, 'abort');
    }
  }

  /**
   * One scheduler move on `run`: compute the next action (with the stage's health when
   * the plan has a gate) and execute it. Returns the stored run after the move, or
   * undefined when nothing was due or another writer got there first.
   */
  async step(run: RolloutRun, ctx: StepContext): Promise<RolloutRun | undefined> {
    const now = this.#clock.now();
    const health = run.plan.health !== undefined && run.stageIndex >= 0 ? await this.stageHealth(run) : undefined;
    const action = nextAction(run, now, health);
    return this.#execute(run, action, now, ctx);
  }

  /**
   * The current stage's apply reports: instances whose identity matches a scope released
   * so far and that report on the run's version (running it, or failed to apply it).
   */
  async stageHealth(run: RolloutRun): Promise<StageHealth> {
    const scopes = run.plan.stages.slice(0, run.stageIndex + 1).map((s) => s.scope);
    const reports = await this.#store.listFleetReports(run.topic);
    let instances = 0;
    let failed = 0;
    for (const r of reports) {
      if (!scopes.some((s) => scopeMatches(s, r.identity))) continue;
      const isFailed = r.failedVersion === run.version;
      if (r.version !== run.version && !isFailed) continue;
      instances++;
      if (isFailed) failed++;
    }
    return { instances, failed };
  }

  async #execute(run: RolloutRun, action: RolloutAction, now: number, ctx: StepContext): Promise<RolloutRun | undefined> {
    const fencing = ctx.epoch === undefined ? {} : { epoch: ctx.epoch };
    // Fencing: a scheduler whose lease was taken over (a newer epoch wrote this run) does
    // nothing; the one that acts stamps its epoch, and the compare-and-set on the revision
    // makes the check and the write one step (a newer leader's write changes the revision).
    if (ctx.epoch !== undefined && action.kind !== 'none' && action.kind !== 'wait' && (run.epoch ?? 0) > ctx.epoch) return undefined;
    const stamp = (r: RolloutRun): RolloutRun => (ctx.epoch === undefined ? r : { ...r, epoch: ctx.epoch });
    switch (action.kind) {
      case 'none':
      case 'wait':
        return undefined;
      case 'release': {
        await this.#releaseStage(run, action.stage, ctx.actor, now);
        const next = stamp(applyAction(run, action, now));
        if (!(await this.#store.updateRun(next, run.revision))) {
          // Someone changed the run while we released. If it was aborted or rolled back,
          // their withdrawal may have run before our release landed: withdraw again, so an
          // aborted version never stays live.
          const fresh = await this.#store.getRun(run.topic, run.runId);
          if (fresh !== undefined && (fresh.status === 'aborted' || fresh.status === 'rolled_back')) await this.#withdrawAll(fresh, this.#clock.now());
          return undefined;
        }
        await this.#audit(ctx.actor, 'rollout.release', next, { stage: action.stage + 1, scope: next.plan.stages[action.stage]?.scope, ...fencing });
        return next;
      }
      case 'complete':
      case 'pause': {
        const next = stamp(applyAction(run, action, now));
        if (!(await this.#store.updateRun(next, run.revision))) return undefined;
        await this.#audit(ctx.actor, `rollout.${action.kind}`, next, fencing, action.kind === 'pause' ? action.reason : undefined);
        return next;
      }
      case 'rollback': {
        // Withdraw first: a crash after it leaves a running run that the gate rolls back again.
        await this.#withdrawAll(run, now);
        const next = stamp(applyAction(run, action, now));
        if (!(await this.#store.updateRun(next, run.revision))) return undefined;
        await this.#withdrawAll(next, now); // a stage released concurrently
        await this.#audit(ctx.actor, 'rollout.rollback', next, fencing, action.reason);
        return next;
      }
    }
  }

  async #releaseStage(run: RolloutRun, stage: number, by: string, now: number): Promise<void> {
    const s = run.plan.stages[stage];
    if (s === undefined) throw new QuireError(Code.INTERNAL, `run ${run.runId} has no stage ${stage + 1}`);
    await this.#store.putRelease({
      topic: run.topic,
      version: run.version,
      scope: s.scope,
      scopeKey: scopeKey(s.scope),
      releasedAt: now,
      releasedBy: by,
      runId: run.runId,
    });
  }

  /** Withdraw the version from every scope this run released it to. */
  async #withdrawAll(run: RolloutRun, now: number): Promise<string[]> {
    const releases = await this.#store.listReleases(run.topic);
    const mine = releases.filter((r) => r.version === run.version && r.runId === run.runId && r.withdrawnAt === undefined);
    for (const r of mine) await this.#store.withdrawRelease(run.topic, r.version, r.scopeKey, now);
    return mine.map((r) => r.scopeKey);
  }

  /** Read-modify-CAS with retries, for controls that are safe to re-apply on a fresh read. */
  async #cas(
    topic: string,
    runId: string,
    who: string,
    action: string,
    reason: string | undefined,
    change: (run: RolloutRun, now: number) => RolloutRun,
  ): Promise<RolloutRun> {
    for (let attempt = 1; ; attempt++) {
      const run = await this.#requireRun(topic, runId);
      const next = change(run, this.#clock.now());
      if (await this.#store.updateRun(next, run.revision)) {
        await this.#audit(who, action, next, {}, reason);
        return next;
      }
      if (attempt >= this.#attempts) throw new QuireError(Code.ABORTED, `run ${runId} kept changing; gave up after ${attempt} attempts`);
    }
  }

  /**
   * Advance now: release the next stage and record it. Not retried on a lost race (the
   * scheduler may just have released that very stage): ABORTED, re-read and decide.
   */
  async #advance(topic: string, runId: string, who: string, reason: string | undefined): Promise<RolloutRun> {
    const run = await this.#requireRun(topic, runId);
    const now = this.#clock.now();
    const { run: next, stage } = advanceRun(run, now);
    await this.#releaseStage(run, stage, who, now);
    if (!(await this.#store.updateRun(next, run.revision))) {
      throw new QuireError(Code.ABORTED, `run ${runId} changed while advancing (now at stage ${(await this.#requireRun(topic, runId)).stageIndex + 1}); re-read it`, {
        field: 'runId',
      });
    }
    await this.#audit(who, 'rollout.advance', next, { stage: stage + 1, scope: next.plan.stages[stage]?.scope }, reason);
    return next;
  }

  /** Abort: withdraw every release the run made, then record the run as aborted. */
  async #stop(topic: string, runId: string, who: string, reason: string, verb: 'abort'): Promise<RolloutRun> {
    for (let attempt = 1; ; attempt++) {
      const run = await this.#requireRun(topic, runId);
      const now = this.#clock.now();
      const next = abortRun(run, now, reason);
      await this.#withdrawAll(run, now);
      if (await this.#store.updateRun(next, run.revision)) {
        const withdrawn = await this.#withdrawAll(next, now); // a stage released concurrently
        await this.#audit(who, `rollout.${verb}`, next, withdrawn.length > 0 ? { lateWithdrawn: withdrawn } : {}, reason);
        return next;
      }
      if (attempt >= this.#attempts) throw new QuireError(Code.ABORTED, `run ${runId} kept changing; gave up after ${attempt} attempts`);
    }
  }

  async #requireTopic(name: unknown): Promise<Topic> {
    const n = validateTopicName(name);
    const topic = await this.#store.getTopic(n);
    if (topic === undefined) throw QuireError.notFound(`topic ${n}`, 'topic');
    return topic;
  }

  async #requireRun(topic: string, runId: string): Promise<RolloutRun> {
    const run = await this.#store.getRun(topic, runId);
    if (run === undefined) throw QuireError.notFound(`rollout run ${runId} of topic ${topic}`, 'runId');
    return run;
  }

  async #audit(actor: string, action: string, run: RolloutRun, details: Record<string, unknown>, reason?: string): Promise<void> {
    const entry: AuditEntry = {
      id: randomUUID(),
      at: this.#clock.now(),
      actor,
      action,
      topic: run.topic,
      details: { runId: run.runId, version: run.version, status: run.status, stage: run.stageIndex + 1, revision: run.revision, ...details },
    };
    if (reason !== undefined) entry.reason = reason;
    await this.#store.appendAudit(entry);
  }
}

function validateActor(actor: unknown): string {
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > 256) {
    throw QuireError.invalid('actor', 'must be a non-empty string of at most 256 characters');
  }
  return actor;
}

function validateRunId(runId: unknown): string {
  if (typeof runId !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(runId)) {
    throw QuireError.invalid('runId', 'must be 1-128 characters of A-Z, a-z, 0-9, "_" and "-"');
  }
  return runId;
}

function validateReason(reason: unknown, required: boolean): string | undefined {
  if (reason === undefined || reason === null || reason === '') {
    if (required) throw QuireError.invalid('reason', 'is required');
    return undefined;
  }
  if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > REASON_MAX) {
    throw QuireError.invalid('reason', `must be a non-empty string of at most ${REASON_MAX} characters`);
  }
  return reason;
}
