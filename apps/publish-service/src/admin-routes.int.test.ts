// The admin UI's read routes, from the composition root (embedded store, ports 0): topic
// summaries with pins and active runs, a topic's state with its rollback decision, and the
// fleet reports the consume service wrote (written here straight to the same store).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublishApp, createStores, type PublishApp, type Stores } from './app.ts';
import { loadConfig } from './config.ts';

let dir: string;
let app: PublishApp;
let stores: Stores;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-admin-routes-'));
  const config = loadConfig({ QUIRE_DATA_DIR: dir, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0', QUIRE_LOG_LEVEL: 'silent', QUIRE_SCHEDULER_TICK_MS: '50' });
  app = await createPublishApp(config);
  stores = await createStores(config);
});

afterAll(async () => {
  await stores?.close();
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

interface Summary {
  name: string;
  headVersion: number;
  lastPublishAt?: number;
  pins: { version: number }[];
  activeRun?: { version: number; status: string; nextStageAt?: number };
  hasRolloutPlan: boolean;
}

describe('admin routes', () => {
  it('lists topics with head version, last publish, pins and the active rollout', async () => {
    const plan = { stages: [{ name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 }, { name: 'global', scope: {}, bakeMs: 600_000 }] };
    expect((await rest('POST', '/v1/topics', { name: 'admin.alpha', owner: 'team-a', rolloutPlan: plan })).status).toBe(201);
    expect((await rest('POST', '/v1/topics', { name: 'admin.beta' })).status).toBe(201);
    expect((await rest('POST', '/v1/topics', { name: 'other.gamma' })).status).toBe(201);
    expect((await rest('POST', '/v1/topics/admin.alpha/versions', { data: 'one' })).status).toBe(201);
    expect((await rest('POST', '/v1/topics/admin.alpha/versions', { data: 'two', useRolloutPlan: true })).status).toBe(201);
    expect((await rest('POST', '/v1/topics/admin.beta/versions', { data: 'b1' })).status).toBe(201);
    expect((await rest('POST', '/v1/topics/admin.beta/pins', { version: 1, reason: 'hold' })).status).toBe(201);

    const { status, body } = await rest<{ topics: Summary[] }>('GET', '/v1/admin/topics?prefix=admin.');
    expect(status).toBe(200);
    expect(body.topics.map((t) => t.name)).toEqual(['admin.alpha', 'admin.beta']);
    const [alpha, beta] = body.topics as [Summary, Summary];
    expect(alpha.headVersion).toBe(2);
    expect(alpha.lastPublishAt).toBeGreaterThan(0);
    expect(alpha.hasRolloutPlan).toBe(true);
    expect(alpha.activeRun).toMatchObject({ version: 2, status: 'running' });
    expect(alpha.activeRun?.nextStageAt).toBeGreaterThan(Date.now());
    expect(alpha.pins).toEqual([]);
    expect(beta.pins.map((p) => p.version)).toEqual([1]);
    expect(beta.activeRun).toBeUndefined();
  });

  it("gives a topic's state with the version a global rollback would pin", async () => {
    await rest('POST', '/v1/topics', { name: 'admin.state' });
    await rest('POST', '/v1/topics/admin.state/versions', { data: 'v1' });
    await rest('POST', '/v1/topics/admin.state/versions', { data: 'v2' });
    const { status, body } = await rest<{ topic: { headVersion: number }; releases: unknown[]; pins: unknown[]; rollback: { current?: number; target?: number } }>(
      'GET',
      '/v1/admin/topics/admin.state',
    );
    expect(status).toBe(200);
    expect(body.topic.headVersion).toBe(2);
    expect(body.releases).toHaveLength(2);
    expect(body.rollback).toEqual({ current: 2, target: 1 });

    await rest('POST', '/v1/topics', { name: 'admin.fresh' });
    const fresh = await rest<{ rollback: { refused?: string } }>('GET', '/v1/admin/topics/admin.fresh');
    expect(fresh.body.rollback.refused).toMatch(/nothing to roll back/);
  });

  it('returns the recent fleet reports of a topic', async () => {
    await rest('POST', '/v1/topics', { name: 'admin.fleet' });
    const now = Date.now();
    await stores.store.putFleetReports([
      { topic: 'admin.fleet', instance: 'i-1', identity: { cluster: 'canary', instance: 'i-1' }, version: 2, reportedAt: now },
      { topic: 'admin.fleet', instance: 'i-2', identity: { cluster: 'main', instance: 'i-2' }, version: 1, failedVersion: 2, error: 'bad json', reportedAt: now },
      { topic: 'admin.fleet', instance: 'i-old', identity: { instance: 'i-old' }, version: 1, reportedAt: now - 3_600_000 },
    ]);
    const { body } = await rest<{ reports: { instance: string; error?: string }[]; since: number }>('GET', '/v1/admin/topics/admin.fleet/fleet');
    expect(body.reports.map((r) => r.instance).sort()).toEqual(['i-1', 'i-2']);
    expect(body.reports.find((r) => r.instance === 'i-2')?.error).toBe('bad json');
    const all = await rest<{ reports: unknown[] }>('GET', `/v1/admin/topics/admin.fleet/fleet?since=${now - 7_200_000}`);
    expect(all.body.reports).toHaveLength(3);
  });

  it('answers 404 naming the topic, and 400 for a bad since', async () => {
    const missing = await rest<{ error: { field?: string } }>('GET', '/v1/admin/topics/nope.nothing');
    expect(missing.status).toBe(404);
    const bad = await rest('GET', '/v1/admin/topics/admin.fleet/fleet?since=yesterday');
    expect(bad.status).toBe(400);
  });
});
