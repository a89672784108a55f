// The OpenAPI documents of both services (served on /docs/json, built by @fastify/swagger
// from the route schemas): each validates against the OpenAPI 3.1 schema, and every
// operation in it answers as described when called for real (Cassandra + s3proxy):
// the status is one the document lists, and the JSON body matches the documented schema.
// Every answer also went through the server's response validation (a field a schema
// does not list would be a 500 here, not a silently dropped field).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createConsumeApp, loadConfig as loadConsumeConfig, type ConsumeApp } from '@quire/consume-service';
import { operationsOf, validateOpenApi, walkOpenApi, type OpenApiDoc, type WalkStep } from '@quire/observability/testing';
import { quireTestStores } from '@quire/test-servers';
import { createPublishApp, type PublishApp } from './app.ts';
import { loadConfig } from './config.ts';

let pub: PublishApp;
let con: ConsumeApp;
const topic = 'openapi.walk';
const HEADERS = { 'x-quire-actor': 'walker' };

beforeAll(async () => {
  const testStores = quireTestStores(inject('quireServers'), 'openapi');
  const env = {
    ...testStores.env,
    QUIRE_PUBLISH_HTTP_PORT: '0',
    QUIRE_PUBLISH_GRPC_PORT: '0',
    QUIRE_CONSUME_HTTP_PORT: '0',
    QUIRE_CONSUME_GRPC_PORT: '0',
    QUIRE_LOG_LEVEL: 'silent',
    QUIRE_CHANGE_POLL_MS: '100',
  };
  pub = await createPublishApp(loadConfig(env));
  con = await createConsumeApp(loadConsumeConfig(env));
});

afterAll(async () => {
  await Promise.all([pub?.close(), con?.close()]);
});

async function docOf(url: string): Promise<OpenApiDoc> {
  const res = await fetch(`${url}/docs/json`);
  expect(res.status).toBe(200);
  return (await res.json()) as OpenApiDoc;
}

/** Every operation of `doc` has a step, and every step is an operation of `doc`. */
function expectCoverage(doc: OpenApiDoc, steps: readonly WalkStep[]): void {
  const ops = operationsOf(doc).sort();
  const walked = [...new Set(steps.map((s) => s.op))].sort();
  expect(walked).toEqual(ops);
}

describe('OpenAPI: publish service', () => {
  it('the document validates (OpenAPI 3.1) and the UI is served on /docs', async () => {
    const doc = await docOf(pub.httpUrl);
    const res = await validateOpenApi(doc);
    expect(res.errors).toBeUndefined();
    expect(res).toMatchObject({ valid: true, version: '3.1' });
    const ui = await fetch(`${pub.httpUrl}/docs`);
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toContain('text/html');
  });

  it('every route in the document answers as described', async () => {
    const doc = await docOf(pub.httpUrl);
    const t = { topic };
    const blob = 'b'.repeat(100);
    let blobVersion: { pointer: { kind: string; locations?: Array<{ key: string }> } } | undefined;
    let runId = '';
    let tokenId = '';
    const plan = { stages: [{ scope: { region: 'region-a' } }, { scope: { region: 'region-b' }, bakeMs: 3_600_000 }, { scope: {}, bakeMs: 3_600_000 }] };
    const pin = (): Promise<Response> =>
      fetch(`${pub.httpUrl}/v1/topics/${topic}/pins`, {
        method: 'POST',
        headers: { ...HEADERS, 'content-type': 'application/json' },
        body: JSON.stringify({ version: 1, scope: { application: 'walker' }, reason: 'walk' }),
      });
    const steps: WalkStep[] = [
      { op: 'GET /healthz', status: 200 },
      { op: 'GET /readyz', status: 200 },
      { op: 'GET /metrics', status: 200 },
      {
        op: 'POST /v1/topics',
        body: { name: topic, owner: 'walkers', description: 'walked', inlineThresholdBytes: 16, rolloutPlan: plan, allowedApplications: ['walker', 'other'] },
        status: 201,
      },
      // An encrypted topic: its `encryption` setting is part of the documented answer.
      {
        op: 'POST /v1/topics',
        body: { name: 'openapi.sealed', owner: 'walkers', encryption: { keyId: 'walk-key' } },
        status: 201,
        then: (b) => void expect(b).toMatchObject({ name: 'openapi.sealed', encryption: { algorithm: 'aes-256-gcm', keyId: 'walk-key' } }),
      },
      { op: 'GET /v1/topics', query: { prefix: 'openapi.', limit: '10' }, status: 200 },
      { op: 'PATCH /v1/topics/{topic}', params: t, body: { retention: { keepLast: 50, maxAgeMs: 86_400_000 }, jsonSchema: null }, status: 200 },
      { op: 'POST /v1/topics/{topic}/versions', params: t, body: { data: 'hello', metadata: { source: 'walk' }, contentType: 'text/plain' }, status: 201 },
      {
        op: 'PUT /v1/topics/{topic}/versions',
        params: t,
        query: { metadata: JSON.stringify({ source: 'walk' }) },
        raw: { contentType: 'application/octet-stream', data: blob },
        status: 201,
        then: (b) => void (blobVersion = (b as { version: typeof blobVersion }).version),
      },
      { op: 'POST /v1/topics/{topic}/uploads', params: t, body: {}, status: 201 },
      {
        op: 'POST /v1/topics/{topic}/versions:register',
        params: t,
        before: () => expect(blobVersion?.pointer.kind).toBe('s3'),
        get body() {
          return { key: blobVersion?.pointer.locations?.[0]?.key, sha256: createHash('sha256').update(blob).digest('hex'), size: blob.length };
        },
        status: 201,
      },
      { op: 'GET /v1/topics/{topic}', params: t, status: 200 },
      { op: 'GET /v1/topics/{topic}/versions', params: t, query: { order: 'asc' }, status: 200 },
      { op: 'GET /v1/topics/{topic}/versions/{version}', params: { topic, version: 2 }, status: 200 },
      { op: 'GET /v1/topics/{topic}/versions/{version}/data', params: { topic, version: 1 }, status: 200 },
      { op: 'POST /v1/topics/{topic}/versions/{version}/releases', params: { topic, version: 1 }, body: { scopes: [{ region: 'region-b' }], reason: 'walk' }, status: 201 },
      { op: 'GET /v1/topics/{topic}/versions/{version}/releases', params: { topic, version: 1 }, query: { includeWithdrawn: 'true' }, status: 200 },
      { op: 'POST /v1/topics/{topic}/pins', params: t, body: { version: 1, scope: { application: 'walker' }, reason: 'walk' }, status: 201 },
      { op: 'POST /v1/topics/{topic}/pins:unpin', params: t, body: { scope: { application: 'walker' }, reason: 'walk' }, status: 200 },
      { op: 'DELETE /v1/topics/{topic}/pins', params: t, before: async () => void expect((await pin()).status).toBe(201), body: { scope: { application: 'walker' } }, status: 200 },
      { op: 'GET /v1/topics/{topic}/pins', params: t, query: { history: 'true' }, status: 200 },
      { op: 'POST /v1/topics/{topic}/rollback', params: t, body: { scope: {}, reason: 'walk' }, status: 201 },
      { op: 'POST /v1/topics/{topic}/retention:run', params: t, status: 200 },
      { op: 'POST /v1/topics/{topic}/rollouts', params: t, body: { version: 3 }, status: 201, then: (b) => void (runId = (b as { runId: string }).runId) },
      { op: 'GET /v1/topics/{topic}/rollouts', params: t, query: { active: 'true' }, status: 200 },
      ...(['pause', 'resume', 'advance', 'abort'] as const).map((action) => ({
        op: `POST /v1/topics/{topic}/rollouts/{runId}/${action}`,
        get params() {
          return { topic, runId };
        },
        body: { reason: 'walk' },
        status: 200,
      })),
      {
        op: 'GET /v1/topics/{topic}/rollouts/{runId}',
        get params() {
          return { topic, runId };
        },
        status: 200,
      },
      {
        op: 'DELETE /v1/topics/{topic}/versions/{version}',
        // Versions 4 and 5 for a scope of their own: 4 is neither the latest of a scope nor pinned.
        before: async () => {
          for (const data of ['four', 'five']) {
            const r = await fetch(`${pub.httpUrl}/v1/topics/${topic}/versions`, {
              method: 'POST',
              headers: { ...HEADERS, 'content-type': 'application/json' },
              body: JSON.stringify({ data, scopes: [{ application: 'deletable' }] }),
            });
            expect(r.status).toBe(201);
          }
        },
        params: { topic, version: 4 },
        body: { reason: 'walk' },
        status: 200,
      },
      // The admin UI's read views.
      {
        op: 'GET /v1/admin/topics',
        query: { prefix: topic },
        status: 200,
        then: (b) => {
          const { topics } = b as { topics: Array<{ name: string; headVersion: number; lastPublishAt?: number; hasRolloutPlan: boolean }> };
          expect(topics.map((x) => x.name)).toEqual([topic]);
          expect(topics[0]).toMatchObject({ headVersion: 5, hasRolloutPlan: true, lastPublishAt: expect.any(Number) });
        },
      },
      {
        op: 'GET /v1/admin/topics/{topic}',
        params: t,
        status: 200,
        then: (b) => {
          const d = b as { topic: { name: string; headVersion: number }; pinHistory: unknown[]; releases: unknown[]; runs: Array<{ runId: string; status: string }>; rollback: unknown };
          expect(d.topic).toMatchObject({ name: topic, headVersion: 5 });
          expect(d.pinHistory.length).toBeGreaterThanOrEqual(3);
          expect(d.releases.length).toBeGreaterThan(0);
          expect(d.runs).toEqual([expect.objectContaining({ runId, status: 'aborted' })]);
          // Several versions went to the whole fleet: a global roll back would pin one before the current one.
          expect(d.rollback).toEqual({ current: expect.any(Number), target: expect.any(Number) });
          const { current, target } = d.rollback as { current: number; target: number };
          expect(target).toBeLessThan(current);
        },
      },
      {
        op: 'GET /v1/admin/topics/{topic}/fleet',
        params: t,
        // A consumer instance reports (through the consume service) that version 2 failed to apply.
        before: async () => {
          const subscriptions = [{ topic, appliedVersion: 1, failedVersion: 2, error: 'walk' }];
          const r = await fetch(`${con.httpUrl}/v1/poll`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ identity: { application: 'walker', instance: 'walk-1' }, subscriptions }),
          });
          expect(r.status).toBe(200);
          await con.service.flushFleetReports();
        },
        status: 200,
        then: (b) => {
          const f = b as { now: number; since: number; reports: unknown[] };
          expect(f.since).toBeLessThan(f.now);
          expect(f.reports).toEqual([expect.objectContaining({ topic, instance: 'walk-1', version: 1, failedVersion: 2, error: 'walk' })]);
        },
      },
      { op: 'GET /v1/audit', query: { topic, limit: '100' }, status: 200 },
      { op: 'GET /v1/scheduler', status: 200 },
      // Tokens (access control is off here: the token API still answers, for the first admin token's successors).
      {
        op: 'POST /v1/tokens',
        body: { name: 'walk-consumer', role: 'consumer', prefixes: ['openapi.'], application: 'walker' },
        status: 201,
        then: (b) => {
          const { token: tk, tokenString } = b as { token: { id: string }; tokenString: string };
          expect(tk).toMatchObject({ name: 'walk-consumer', role: 'consumer', prefixes: ['openapi.'], application: 'walker', createdBy: 'walker' });
          expect(tokenString).toContain(tk.id);
          tokenId = tk.id;
        },
      },
      {
        op: 'POST /v1/tokens/{id}/revoke',
        get params() {
          return { id: tokenId };
        },
        status: 200,
        then: (b) => void expect(b).toMatchObject({ id: tokenId, revokedAt: expect.any(Number), revokedBy: 'walker' }),
      },
      {
        op: 'GET /v1/tokens',
        status: 200,
        then: (b) => {
          const { tokens } = b as { tokens: Array<{ id: string }> };
          expect(tokens.find((x) => x.id === tokenId)).toMatchObject({ name: 'walk-consumer', revokedBy: 'walker' });
          expect(JSON.stringify(tokens)).not.toMatch(/secret/i);
        },
      },
    ];
    expectCoverage(doc, steps);
    const results = await walkOpenApi(pub.httpUrl, doc, steps, HEADERS);
    expect(results.map((r) => r.op)).toEqual(steps.map((s) => s.op));
  });
});

describe('OpenAPI: consume service', () => {
  it('the document validates (OpenAPI 3.1) and every route in it answers as described', async () => {
    const doc = await docOf(con.httpUrl);
    const res = await validateOpenApi(doc);
    expect(res.errors).toBeUndefined();
    expect(res.valid).toBe(true);

    // A topic of its own (not the publish walk's: this test must not depend on that one
    // passing): version 1 inline, version 2 in S3 (above the 16-byte threshold), both global.
    const topic = 'openapi.consume';
    const t = { topic };
    const publish = async (path: string, body: unknown): Promise<void> => {
      const r = await fetch(`${pub.httpUrl}${path}`, { method: 'POST', headers: { ...HEADERS, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(r.status, `POST ${path}: ${await r.text()}`).toBe(201);
    };
    await publish('/v1/topics', { name: topic, owner: 'walkers', inlineThresholdBytes: 16, allowedApplications: ['walker'] });
    await publish(`/v1/topics/${topic}/versions`, { data: 'hello', metadata: { source: 'walk' }, contentType: 'text/plain' });
    await publish(`/v1/topics/${topic}/versions`, { data: 'b'.repeat(100), contentType: 'application/octet-stream' });
    const identity = { application: 'walker', cluster: 'c1', region: 'region-a', instance: 'i1' };
    // The consume cache follows the store: wait until it serves version 2.
    const end = Date.now() + 20_000;
    for (;;) {
      const r = await fetch(`${con.httpUrl}/v1/poll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity, subscriptions: [{ topic }] }) });
      const body = (await r.json()) as { updates: Array<{ version: { version: number } }> };
      if (body.updates[0]?.version.version === 2) break;
      if (Date.now() > end) throw new Error(`the consume service never served version 2 of the topic (last answer: ${JSON.stringify(body)})`);
      await new Promise((r2) => setTimeout(r2, 100));
    }
    const steps: WalkStep[] = [
      { op: 'GET /healthz', status: 200 },
      { op: 'GET /readyz', status: 200 },
      { op: 'GET /metrics', status: 200 },
      { op: 'POST /v1/poll', body: { identity, subscriptions: [{ topic, knownVersion: 0 }, { topic: 'openapi.no-such-topic' }] }, status: 200 },
      { op: 'GET /v1/topics/{topic}/versions', params: t, query: { limit: '1' }, status: 200 },
      { op: 'GET /v1/topics/{topic}/versions/{version}', params: { topic, version: 2 }, query: { region: 'region-b' }, status: 200 },
      { op: 'GET /v1/topics/{topic}/versions/{version}/data', params: { topic, version: 2 }, status: 200 },
      { op: 'GET /v1/topics/{topic}/at/{time}', params: { topic, time: new Date().toISOString() }, query: { application: 'walker', region: 'region-a' }, status: 200 },
    ];
    expectCoverage(doc, steps);
    await walkOpenApi(con.httpUrl, doc, steps);
  });
});
