/**
 * REST routes of rollouts and the scheduler (a fastify plugin function). Thin: parse,
 * call `RolloutService` / `Scheduler`, return; errors go through the app's error handler.
 *
 * - `POST /v1/topics/:topic/rollouts` `{version, plan?}` → 201 the run (stage 1 released)
 * - `POST /v1/topics/:topic/rollouts/:runId/{pause|resume|advance|abort}` `{reason}` → the run
 * - `GET  /v1/topics/:topic/rollouts[?active=true]` → `{runs}`, newest first
 * - `GET  /v1/topics/:topic/rollouts/:runId` → the run, with `nextStageAt`
 * - `GET  /v1/scheduler` → `{replicaId, leader, holder, epoch, expiresAt}`
 */
import type { FastifyInstance } from 'fastify';
import { nextStageDueAt } from '@quire/core';
import type { RolloutRun } from '@quire/core';
import { objectSchema, restActor, rolloutRunSchema, wrapSchema } from '@quire/service-kit';
import { ROLLOUT_CONTROLS, type RolloutService } from './rollouts.ts';
import type { Scheduler } from './scheduler.ts';

export interface RolloutRouteDeps {
  rollouts: RolloutService;
  scheduler?: Scheduler;
}

const str = { type: 'string' } as const;
const topicParams = { type: 'object', required: ['topic'], properties: { topic: str } } as const;
const runParams = { type: 'object', required: ['topic', 'runId'], properties: { topic: str, runId: str } } as const;

/** A run as the API shows it: the stored run plus when its next stage is due (running runs). */
export function runView(run: RolloutRun): RolloutRun & { nextStageAt?: number } {
  const due = run.status === 'running' ? nextStageDueAt(run) : undefined;
  return due === undefined ? run : { ...run, nextStageAt: due };
}

export async function registerRolloutRoutes(app: FastifyInstance, deps: RolloutRouteDeps): Promise<void> {
  const { rollouts, scheduler } = deps;

  app.post<{ Params: { topic: string }; Body: { version: number; plan?: unknown } }>(
    '/v1/topics/:topic/rollouts',
    {
      schema: {
        params: topicParams,
        body: { type: 'object', additionalProperties: false, required: ['version'], properties: { version: { type: 'integer' }, plan: { type: 'object' } } },
        response: { 201: rolloutRunSchema },
      },
    },
    async (req, reply) => reply.status(201).send(runView(await rollouts.start(req.params.topic, req.body.version, req.body.plan, restActor(req)))),
  );

  for (const action of ROLLOUT_CONTROLS) {
    app.post<{ Params: { topic: string; runId: string }; Body: { reason?: string } | undefined }>(
      `/v1/topics/:topic/rollouts/:runId/${action}`,
      { schema: { params: runParams, body: { type: 'object', additionalProperties: false, properties: { reason: str } }, response: { 200: rolloutRunSchema } } },
      async (req) => runView(await rollouts.control(req.params.topic, req.params.runId, action, req.body?.reason, restActor(req))),
    );
  }

  app.get<{ Params: { topic: string }; Querystring: { active?: string } }>(
    '/v1/topics/:topic/rollouts',
    {
      schema: {
        params: topicParams,
        querystring: { type: 'object', additionalProperties: false, properties: { active: { enum: ['true', 'false'] } } },
        response: { 200: wrapSchema('runs', { type: 'array', items: rolloutRunSchema }) },
      },
    },
    async (req) => ({ runs: (await rollouts.list(req.params.topic, req.query.active === 'true')).map(runView) }),
  );

  app.get<{ Params: { topic: string; runId: string } }>('/v1/topics/:topic/rollouts/:runId', { schema: { params: runParams, response: { 200: rolloutRunSchema } } }, async (req) =>
    runView(await rollouts.get(req.params.topic, req.params.runId)),
  );

  const schedulerStatus = objectSchema(
    { enabled: { type: 'boolean' }, replicaId: str, leader: { type: 'boolean' }, holder: str, epoch: { type: 'integer' }, expiresAt: { type: 'integer' } },
    ['enabled', 'leader'],
  );
  app.get('/v1/scheduler', { schema: { response: { 200: schedulerStatus } } }, async () => (scheduler === undefined ? { leader: false, enabled: false } : { enabled: true, ...(await scheduler.status()) }));
}
