// The rollout API over REST and gRPC, from the composition root (embedded store, local blob
// directory, ports 0, its own scheduler leading alone): thin transports over RolloutService.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadQuireProto } from '@quire/proto';
import type { PublishServiceClient } from '@quire/proto';
import { FIELD_TRAILER } from '@quire/service-kit';
import { createPublishApp, type PublishApp } from './app.ts';
import { loadConfig } from './config.ts';

let dir: string;
let app: PublishApp;
let client: PublishServiceClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-rollout-api-'));
  app = await createPublishApp(
    loadConfig({ QUIRE_DATA_DIR: dir, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0', QUIRE_LOG_LEVEL: 'silent', QUIRE_SCHEDULER_TICK_MS: '50', QUIRE_REPLICA_ID: 'api-test' }),
  );
  const Ctor = loadQuireProto().quire.v1.PublishService;
  client = new Ctor(app.grpcAddress, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function rest<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${app.httpUrl}${path}`, {
    method,
    headers: { 'x-quire-actor': 'ops', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

type Method = (req: never, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => unknown;
function unary<T>(name: string, req: unknown): Promise<T> {
  const md = new grpc.Metadata();
  md.set('x-quire-actor', 'grpc-ops');
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Method>)[name] as Method;
    fn.call(client, req as never, md, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

const plan = {
  stages: [
    { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
    { name: 'global', scope: {}, bakeMs: 600_000 },
  ],
};
interface Run {
  runId: string;
  status: string;
  stageIndex: number | string;
  reason?: string;
  nextStageAt?: number | string;
}
type ErrorBody = { error: { code: string; field?: string } };

describe('rollout API', () => {
  it('REST: publish with the plan, pause / resume / abort with reasons, list, get, scheduler status', async () => {
    expect((await rest('POST', '/v1/topics', { name: 'api.rest', rolloutPlan: plan })).status).toBe(201);
    const pub = await rest<{ rollout: Run; releases: unknown[] }>('POST', '/v1/topics/api.rest/versions', { data: 'v1', useRolloutPlan: true });
    expect(pub.status).toBe(201);
    expect(pub.body.releases).toEqual([]);
    expect(pub.body.rollout).toMatchObject({ status: 'running', stageIndex: 0 });
    const base = `/v1/topics/api.rest/rollouts/${pub.body.rollout.runId}`;

    expect((await rest<Run>('GET', base)).body).toMatchObject({ status: 'running', nextStageAt: expect.any(Number) });
    const noReason = await rest<ErrorBody>('POST', `${base}/pause`, {});
    expect(noReason).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ARGUMENT', field: 'reason' } } });
    expect((await rest<Run>('POST', `${base}/pause`, { reason: 'hold on' })).body).toMatchObject({ status: 'paused', reason: 'hold on' });
    expect((await rest<Run>('POST', `${base}/resume`, {})).body).toMatchObject({ status: 'running' });
    expect((await rest<{ runs: Run[] }>('GET', '/v1/topics/api.rest/rollouts?active=true')).body.runs).toHaveLength(1);
    expect((await rest<Run>('POST', `${base}/abort`, { reason: 'bad' })).body).toMatchObject({ status: 'aborted', reason: 'bad' });
    const again = await rest<ErrorBody>('POST', `${base}/abort`, { reason: 'bad' });
    expect(again.body).toMatchObject({ error: { code: 'FAILED_PRECONDITION', field: 'runId' } });
    expect((await rest<{ runs: Run[] }>('GET', '/v1/topics/api.rest/rollouts?active=true')).body.runs).toEqual([]);
    expect((await rest<Run>('GET', base)).body).toMatchObject({ status: 'aborted' });
    expect((await rest<ErrorBody>('GET', '/v1/topics/api.rest/rollouts/nope')).body).toMatchObject({ error: { code: 'NOT_FOUND', field: 'runId' } });
    const bad = await rest<ErrorBody>('POST', '/v1/topics/api.rest/rollouts', { version: 1, plan: { stages: [] } });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ARGUMENT', field: 'plan.stages' } } });

    const status = await rest<{ leader: boolean; holder: string; epoch: number; replicaId: string }>('GET', '/v1/scheduler');
    expect(status.body).toMatchObject({ leader: true, holder: 'api-test', replicaId: 'api-test', epoch: expect.any(Number) });
  });

  it('gRPC: Publish with use_rollout_plan, StartRollout, ControlRollout, GetRollout, ListRollouts', async () => {
    const pbPlan = { stages: plan.stages.map((st) => ({ ...st, scope: { attributes: st.scope } })) };
    await unary('CreateTopic', { topic: { name: 'api.grpc', owner: 'o', rolloutPlan: pbPlan } });
    const pub = await unary<{ rollout: Run | null }>('Publish', { options: { topic: 'api.grpc', useRolloutPlan: true }, data: Buffer.from('v1') });
    expect(pub.rollout).toMatchObject({ status: 'running', stageIndex: 0 });
    const runId = (pub.rollout as Run).runId;
    const advanced = await unary<Run>('ControlRollout', { topic: 'api.grpc', runId, action: 'advance', reason: 'looks good' });
    expect(advanced).toMatchObject({ status: 'completed', stageIndex: 1, nextStageAt: '0' });
    expect(await unary<Run>('GetRollout', { topic: 'api.grpc', runId })).toMatchObject({ status: 'completed' });

    await unary('Publish', { options: { topic: 'api.grpc', scopes: [{ attributes: { cluster: 'x' } }] }, data: Buffer.from('v2') });
    const started = await unary<Run>('StartRollout', { topic: 'api.grpc', version: 2 });
    expect(started).toMatchObject({ status: 'running', stageIndex: 0 });
    const { runs } = await unary<{ runs: Run[] }>('ListRollouts', { topic: 'api.grpc', activeOnly: true });
    expect(runs.map((r) => r.runId)).toEqual([started.runId]);

    const err = await unary('StartRollout', { topic: 'api.grpc', version: 2, plan: { stages: [] } }).then(
      () => undefined,
      (e: unknown) => e as grpc.ServiceError,
    );
    expect({ code: err?.code, field: err?.metadata.get(FIELD_TRAILER)[0] }).toEqual({ code: grpc.status.INVALID_ARGUMENT, field: 'plan.stages' });
  });
});
