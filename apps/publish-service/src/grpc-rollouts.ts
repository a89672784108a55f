/**
 * gRPC handlers of the four rollout RPCs of `quire.v1.PublishService`, to spread into the
 * service's handler map. Thin: map the request, call `RolloutService`, map the run.
 */
import type * as grpc from '@grpc/grpc-js';
import { nextStageDueAt } from '@quire/core';
import type { RolloutRun } from '@quire/core';
import type { PbRolloutRun, PublishServiceHandlers } from '@quire/proto';
import { grpcActor, grpcFailure } from '@quire/service-kit';
import { int64, planFromPb, planToPb } from './mapping.ts';
import type { RolloutService } from './rollouts.ts';

export type RolloutHandlers = Pick<PublishServiceHandlers, 'StartRollout' | 'ControlRollout' | 'GetRollout' | 'ListRollouts'>;

export function rolloutGrpcHandlers(rollouts: RolloutService, onError?: (err: unknown, method: string) => void): RolloutHandlers {
  const fail = grpcFailure(onError);
  function unary<Req, Res>(method: string, fn: (req: Req, actor: string) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      fn(call.request, grpcActor(call.metadata)).then(
        (res) => callback(null, res),
        (err: unknown) => callback(fail(method, err)),
      );
    };
  }
  return {
    StartRollout: unary('StartRollout', async (req, actor) =>
      runToPb(await rollouts.start(req.topic, int64(req.version, 'version'), req.plan === null ? undefined : planFromPb(req.plan, 'plan'), actor)),
    ),
    ControlRollout: unary('ControlRollout', async (req, actor) => runToPb(await rollouts.control(req.topic, req.runId, req.action, req.reason, actor))),
    GetRollout: unary('GetRollout', async (req) => runToPb(await rollouts.get(req.topic, req.runId))),
    ListRollouts: unary('ListRollouts', async (req) => ({ runs: (await rollouts.list(req.topic, req.activeOnly)).map(runToPb) })),
  };
}

export function runToPb(run: RolloutRun): PbRolloutRun {
  const due = run.status === 'running' ? nextStageDueAt(run) : undefined;
  return {
    topic: run.topic,
    runId: run.runId,
    version: run.version,
    plan: planToPb(run.plan),
    status: run.status,
    stageIndex: run.stageIndex,
    stageReleasedAt: run.stageReleasedAt,
    nextStageAt: due ?? 0,
    reason: run.reason ?? '',
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    startedBy: run.startedBy,
  };
}
