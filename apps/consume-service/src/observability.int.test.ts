// Observability of both services as real processes on Cassandra + s3proxy: the named
// /metrics series exist and move when publishes and polls happen, gRPC health and
// reflection answer, /healthz and /readyz answer, request ids are logged and echoed,
// and a token sent by a client never reaches the logs.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { grpcHealth, grpcReflect, metricValue, scrape, type Sample } from '@quire/observability/testing';
import { startQuireProcess, quireTestStores, type QuireProcess } from '@quire/test-servers';
import { createStores, type Stores } from './app.ts';
import { publishS3 } from './testing.ts';

let pub: QuireProcess;
let con: QuireProcess;
let stores: Stores;
const topic = `obs.metrics.${randomUUID().slice(0, 8)}`;
const SECRET = `secret-token-${randomUUID()}`;

beforeAll(async () => {
  const { cassandra, s3 } = inject('quireServers');
  const testStores = quireTestStores({ cassandra, s3 }, 'obs');
  const { keyspace, regions } = testStores;
  const env = {
    ...testStores.env,
    QUIRE_PUBLISH_HTTP_PORT: '0',
    QUIRE_PUBLISH_GRPC_PORT: '0',
    QUIRE_CONSUME_HTTP_PORT: '0',
    QUIRE_CONSUME_GRPC_PORT: '0',
    QUIRE_LOG_LEVEL: 'info',
    QUIRE_CHANGE_POLL_MS: '100',
    QUIRE_SCHEDULER_TICK_MS: '100',
    QUIRE_LEASE_TTL_MS: '1500',
  };
  pub = await startQuireProcess('publish-service', env);
  con = await startQuireProcess('consume-service', env);
  stores = await createStores({
    metadataStore: { kind: 'cassandra', contactPoints: cassandra.contactPoints, port: cassandra.port, localDataCenter: cassandra.localDataCenter, keyspace, replicationFactor: 1 },
    blobStore: { kind: 's3', regions },
  });
  expect((await call(pub.httpUrl, 'POST', '/v1/topics', { name: topic, owner: 'obs', inlineThresholdBytes: 16 })).status).toBe(201);
});

afterAll(async () => {
  await Promise.all([pub?.stop(), con?.stop()]);
  await stores?.close();
});

async function call<T = Record<string, unknown>>(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'x-quire-actor': 'obs-test', authorization: `Bearer ${SECRET}`, 'x-quire-token': SECRET, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T, headers: res.headers };
}

/** Scrape until `ok(samples)` (the services change some values asynchronously); fails after 20 s. */
async function scrapeUntil(url: string, ok: (s: Sample[]) => boolean, what: string): Promise<Sample[]> {
  const end = Date.now() + 20_000;
  for (;;) {
    const samples = await scrape(url);
    if (ok(samples)) return samples;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const v = (s: Sample[], name: string, labels: Record<string, string> = {}): number => metricValue(s, name, labels) ?? 0;

describe('publish service /metrics', () => {
  it('exposes the named series, and publish count, latency and bytes move with publishes', async () => {
    const before = await scrape(pub.httpUrl);
    for (const name of ['quire_publishes_total', 'quire_publish_duration_seconds_count', 'quire_publish_bytes_total', 'quire_scheduler_leader', 'quire_rollouts_active', 'quire_ready', 'quire_readiness_check', 'process_cpu_user_seconds_total']) {
      expect(before.some((s) => s.name === name), name).toBe(true);
    }
    const small = await call(pub.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'hello', publishId: 'obs-1' });
    expect(small.status).toBe(201);
    const big = await call(pub.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'x'.repeat(300) });
    expect(big.status).toBe(201);
    const replay = await call(pub.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'hello', publishId: 'obs-1' });
    expect(replay.status).toBe(200);
    expect((await call(pub.httpUrl, 'POST', '/v1/topics/obs.no-such-topic/versions', { data: 'x' })).status).toBe(404);

    const after = await scrape(pub.httpUrl);
    expect(v(after, 'quire_publishes_total', { outcome: 'created' }) - v(before, 'quire_publishes_total', { outcome: 'created' })).toBe(2);
    expect(v(after, 'quire_publishes_total', { outcome: 'replayed' }) - v(before, 'quire_publishes_total', { outcome: 'replayed' })).toBe(1);
    expect(v(after, 'quire_publishes_total', { outcome: 'failed' }) - v(before, 'quire_publishes_total', { outcome: 'failed' })).toBe(1);
    expect(v(after, 'quire_publish_bytes_total') - v(before, 'quire_publish_bytes_total')).toBe(5 + 300);
    expect(v(after, 'quire_publish_duration_seconds_count') - v(before, 'quire_publish_duration_seconds_count')).toBe(4);
    expect(v(after, 'quire_http_requests_total', { route: '/v1/topics/:topic/versions', method: 'POST', status: '201' })).toBeGreaterThanOrEqual(2);
  });

  it('reports leadership and active rollouts', async () => {
    await scrapeUntil(pub.httpUrl, (s) => v(s, 'quire_scheduler_leader') === 1, 'the only replica to lead');
    const before = await scrape(pub.httpUrl);
    expect(metricValue(before, 'quire_rollouts_active', { status: 'running' })).toBe(0);
    const plan = { stages: [{ scope: { region: 'region-a' } }, { scope: {}, bakeMs: 3_600_000 }] };
    const run = await call<{ runId: string }>(pub.httpUrl, 'POST', `/v1/topics/${topic}/rollouts`, { version: 2, plan });
    expect(run.status).toBe(201);
    expect(v(await scrape(pub.httpUrl), 'quire_rollouts_active', { status: 'running' })).toBe(1);
    expect((await call(pub.httpUrl, 'POST', `/v1/topics/${topic}/rollouts/${run.body.runId}/pause`, { reason: 'obs' })).status).toBe(200);
    const paused = await scrape(pub.httpUrl);
    expect(v(paused, 'quire_rollouts_active', { status: 'paused' })).toBe(1);
    expect(v(paused, 'quire_rollouts_active', { status: 'running' })).toBe(0);
    expect((await call(pub.httpUrl, 'POST', `/v1/topics/${topic}/rollouts/${run.body.runId}/abort`, { reason: 'obs' })).status).toBe(200);
    expect(v(await scrape(pub.httpUrl), 'quire_rollouts_active')).toBe(0);
  });
});

describe('consume service /metrics', () => {
  const identity = { application: 'obs', cluster: 'obs-1', region: 'region-a', instance: 'obs-i1' };

  it('counts polls, long-polls in flight and held, updates handed out; exposes the cache age', async () => {
    // Wait until the consume cache holds the topic's version 2 (the global release).
    let known = 0;
    const end = Date.now() + 20_000;
    while (known === 0) {
      const r = await call<{ updates: Array<{ version: { version: number } }> }>(con.httpUrl, 'POST', '/v1/poll', { identity, subscriptions: [{ topic }] });
      expect(r.status).toBe(200);
      known = r.body.updates[0]?.version.version ?? 0;
      if (Date.now() > end) throw new Error('the consume service never saw the topic');
    }
    const before = await scrape(con.httpUrl);
    expect(v(before, 'quire_polls_total', { kind: 'poll', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(v(before, 'quire_poll_updates_total')).toBeGreaterThanOrEqual(1);
    expect(v(before, 'quire_cache_refresh_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(metricValue(before, 'quire_cache_refresh_age_seconds')).toBeDefined();
    expect(v(before, 'quire_cache_topics')).toBeGreaterThanOrEqual(1);
    expect(metricValue(before, 'quire_inline_cache_bytes')).toBeDefined();
    expect(v(before, 'quire_polls_in_flight', { kind: 'long' })).toBe(0);

    // A long-poll with nothing new is held: in flight and held until a publish answers it.
    const held = call<{ updates: Array<{ version: { version: number } }> }>(con.httpUrl, 'POST', '/v1/poll', {
      identity,
      subscriptions: [{ topic, knownVersion: known }],
      waitMs: 30_000,
    });
    const during = await scrapeUntil(con.httpUrl, (s) => v(s, 'quire_long_polls_held') === 1, 'the long-poll to be held');
    expect(v(during, 'quire_polls_in_flight', { kind: 'long' })).toBe(1);
    expect((await call(pub.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'new' })).status).toBe(201);
    const answered = await held;
    expect(answered.status).toBe(200);
    expect(answered.body.updates[0]?.version.version).toBeGreaterThan(known);
    const after = await scrape(con.httpUrl);
    expect(v(after, 'quire_long_polls_held')).toBe(0);
    expect(v(after, 'quire_polls_in_flight', { kind: 'long' })).toBe(0);
    expect(v(after, 'quire_polls_total', { kind: 'long', outcome: 'ok' }) - v(before, 'quire_polls_total', { kind: 'long', outcome: 'ok' })).toBe(1);
    expect(v(after, 'quire_poll_updates_total') - v(before, 'quire_poll_updates_total')).toBe(1);
    expect(v(after, 'quire_poll_duration_seconds_count', { kind: 'long' }) - v(before, 'quire_poll_duration_seconds_count', { kind: 'long' })).toBe(1);
  });

  it('counts a consistency-check failure when a released version has no object in S3', async () => {
    const before = await scrape(con.httpUrl);
    const broken = `obs.broken.${randomUUID().slice(0, 8)}`;
    expect((await call(pub.httpUrl, 'POST', '/v1/topics', { name: broken, owner: 'obs' })).status).toBe(201);
    // A version whose S3 object was never uploaded: the consume service must not hand it out.
    await publishS3(stores.store, stores.blobs, broken, 'never uploaded', { upload: false });
    const after = await scrapeUntil(
      con.httpUrl,
      (s) => v(s, 'quire_consistency_check_failures_total', { reason: 'object_missing' }) > v(before, 'quire_consistency_check_failures_total', { reason: 'object_missing' }),
      'a consistency failure',
    );
    expect(v(after, 'quire_consistency_check_failures_total')).toBeGreaterThan(v(before, 'quire_consistency_check_failures_total'));
    const poll = await call<{ updates: unknown[] }>(con.httpUrl, 'POST', '/v1/poll', { identity, subscriptions: [{ topic: broken }] });
    expect(poll.body.updates).toEqual([]);
  });
});

describe('health, readiness, reflection (both services)', () => {
  it('/healthz and /readyz answer 200 with the store and every S3 region up', async () => {
    for (const p of [pub, con]) {
      expect((await call(p.httpUrl, 'GET', '/healthz')).status).toBe(200);
      const ready = await call<{ ready: boolean; status: string; checks: Record<string, { status: string }> }>(p.httpUrl, 'GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body.ready).toBe(true);
      expect(ready.body.checks['metadata_store']?.status).toBe('up');
      expect(ready.body.checks['blob_store:region-a']?.status).toBe('up');
      expect(ready.body.checks['blob_store:region-b']?.status).toBe('up');
    }
  });

  it('gRPC health (grpc.health.v1) says SERVING for the server and its service', async () => {
    for (const [p, svc] of [
      [pub, 'quire.v1.PublishService'],
      [con, 'quire.v1.ConsumeService'],
    ] as const) {
      expect(await grpcHealth(p.grpcAddress)).toBe('SERVING');
      expect(await grpcHealth(p.grpcAddress, svc)).toBe('SERVING');
      await expect(grpcHealth(p.grpcAddress, 'no.such.Service')).rejects.toMatchObject({ code: 5 });
      // Every gRPC call is counted by method and code (grpcCallMetrics), these health checks too.
      const m = await scrape(p.httpUrl);
      expect(metricValue(m, 'quire_grpc_calls_total', { method: '/grpc.health.v1.Health/Check', code: 'OK' })).toBeGreaterThanOrEqual(2);
      expect(metricValue(m, 'quire_grpc_calls_total', { method: '/grpc.health.v1.Health/Check', code: 'NOT_FOUND' })).toBeGreaterThanOrEqual(1);
      expect(metricValue(m, 'quire_grpc_call_duration_seconds_count', { method: '/grpc.health.v1.Health/Check' })).toBeGreaterThanOrEqual(3);
    }
  });

  it('gRPC reflection lists the services and serves their descriptors', async () => {
    const p = await grpcReflect(pub.grpcAddress, 'quire.v1.PublishService');
    expect(p.services).toEqual(expect.arrayContaining(['quire.v1.PublishService', 'grpc.health.v1.Health']));
    expect(p.descriptors.join('')).toContain('PublishService');
    expect(p.descriptors.join('')).toContain('PublishStream');
    const c = await grpcReflect(con.grpcAddress, 'quire.v1.ConsumeService');
    expect(c.services).toEqual(expect.arrayContaining(['quire.v1.ConsumeService', 'grpc.health.v1.Health']));
    expect(c.services).not.toContain('quire.v1.PublishService');
    expect(c.descriptors.join('')).toContain('ConsumeService');
    expect(c.descriptors.join('')).toContain('VersionAt');
  });
});

describe('logs', () => {
  it('are JSON lines carrying the request id (echoed in x-request-id), and never the token', async () => {
    const id = `obs-req-${randomUUID()}`;
    const res = await fetch(`${pub.httpUrl}/v1/topics/${topic}`, { headers: { 'x-request-id': id, authorization: `Bearer ${SECRET}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    const generated = (await call(con.httpUrl, 'GET', '/healthz')).headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    // The services log asynchronously: wait for the request's two lines (incoming, completed).
    const linesOf = (): Array<{ requestId?: string; msg?: string }> =>
      pub
        .output()
        .split('\n')
        .filter((l) => l.includes(id))
        .map((l) => JSON.parse(l) as { requestId?: string; msg?: string });
    const end = Date.now() + 10_000;
    while (linesOf().length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const lines = linesOf();
    expect(lines.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    expect(lines.every((l) => l.requestId === id)).toBe(true);
    expect(pub.output()).not.toContain(SECRET);
    expect(con.output()).not.toContain(SECRET);
  });
});
