// Two publish-service PROCESSES on a real Cassandra (own keyspace) and two s3proxy regions,
// with a short scheduler lease: exactly one leads; kill -9 the leader in the middle of a
// rollout and the other takes over within the lease time; the run completes with each
// stage released exactly once (one audit entry per stage, one run revision per transition).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startQuireProcess, quireTestStores, type QuireProcess } from '@quire/test-servers';

const LEASE_TTL_MS = 1500;
const testStores = quireTestStores(inject('quireServers'), 'sched');
const env = {
  ...testStores.env,
  QUIRE_LOG_LEVEL: 'error',
  QUIRE_PUBLISH_HTTP_PORT: '0',
  QUIRE_PUBLISH_GRPC_PORT: '0',
  QUIRE_LEASE_TTL_MS: String(LEASE_TTL_MS),
  QUIRE_SCHEDULER_TICK_MS: '100',
};

interface SchedulerView {
  replicaId: string;
  leader: boolean;
  holder?: string;
  epoch?: number;
}
interface RunView {
  runId: string;
  status: string;
  stageIndex: number;
  revision: number;
}

let replicas: QuireProcess[] = [];

/** kill -9 of the service process (startQuireProcess runs it without a wrapper). */
async function crash(proc: QuireProcess): Promise<void> {
  await proc.kill();
}

async function call<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'x-quire-actor': 'ops', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as T;
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}\n${replicas.map((p) => p.output()).join('\n')}`);
  return json;
}

async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 20_000, everyMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

beforeAll(async () => {
  // The first migrates the keyspace and creates the buckets; the second starts after it.
  const a = await startQuireProcess('publish-service', { ...env, QUIRE_REPLICA_ID: 'replica-a' });
  const b = await startQuireProcess('publish-service', { ...env, QUIRE_REPLICA_ID: 'replica-b' });
  replicas = [a, b];
});

afterAll(async () => {
  await Promise.all(replicas.map((p) => p.stop()));
});

describe('leader-elected scheduler, two publish-service processes on Cassandra', () => {
  it('one leader; kill -9 it mid-rollout; the other takes over and every stage is released once', async () => {
    const [a, b] = replicas as [QuireProcess, QuireProcess];
    const views = () => Promise.all(replicas.map((p) => call<SchedulerView>(p.httpUrl, 'GET', '/v1/scheduler')));
    const settled = await until(async () => {
      const v = await views();
      return v.filter((s) => s.leader).length === 1 ? v : undefined;
    }, 'a leader');
    const leaderIdx = settled.findIndex((s) => s.leader);
    const leader = replicas[leaderIdx] as QuireProcess;
    const follower = replicas[1 - leaderIdx] as QuireProcess;
    const leaderId = (settled[leaderIdx] as SchedulerView).replicaId;
    // Both see the same holder; exactly one acts. It stays that way for a few renewals.
    expect(settled.map((s) => s.holder)).toEqual([leaderId, leaderId]);
    await new Promise((r) => setTimeout(r, LEASE_TTL_MS));
    expect((await views()).map((s) => s.leader)).toEqual(settled.map((s) => s.leader));

    const topic = 'sched.rollout';
    await call(a.httpUrl, 'POST', '/v1/topics', {
      name: topic,
      rolloutPlan: {
        stages: [
          { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
          { name: 'eu', scope: { region: 'eu' }, bakeMs: 1000 },
          { name: 'global', scope: {}, bakeMs: 3000 },
        ],
      },
    });
    // Published through the follower: stage 1 is released by the request, the rest by the scheduler.
    const pub = await call<{ rollout: RunView; releases: unknown[] }>(follower.httpUrl, 'POST', `/v1/topics/${topic}/versions`, {
      data: 'v1',
      useRolloutPlan: true,
    });
    expect(pub.releases).toEqual([]);
    expect(pub.rollout).toMatchObject({ status: 'running', stageIndex: 0 });
    const runPath = `/v1/topics/${topic}/rollouts/${pub.rollout.runId}`;

    await until(async () => {
      const run = await call<RunView>(follower.httpUrl, 'GET', runPath);
      return run.stageIndex >= 1 ? run : undefined;
    }, 'stage 2 released by the leader');
    // ... and audited (the entry follows the stored change), so the kill lands between stages.
    await until(async () => {
      const page = await call<{ entries: Array<{ action: string; details: Record<string, unknown> }> }>(follower.httpUrl, 'GET', `/v1/audit?topic=${topic}&limit=1000`);
      return page.entries.some((e) => e.action === 'rollout.release' && e.details.stage === 2) ? true : undefined;
    }, 'stage 2 audited');
    const killedAt = Date.now();
    await crash(leader);
    const takeover = await until(
      async () => {
        const s = await call<SchedulerView>(follower.httpUrl, 'GET', '/v1/scheduler');
        return s.leader ? s : undefined;
      },
      'the follower to lead',
      10_000,
      10,
    ).catch(async (err: unknown) => {
      const s = await call<SchedulerView>(follower.httpUrl, 'GET', '/v1/scheduler').catch((e: unknown) => e);
      throw new Error(`${String(err)}; follower says ${JSON.stringify(s)}; its output:\n${follower.output()}`);
    });
    const takeoverMs = Date.now() - killedAt;
    console.log(`scheduler takeover after kill -9: ${takeoverMs} ms (lease TTL ${LEASE_TTL_MS} ms, epoch ${settled[leaderIdx]?.epoch} → ${takeover.epoch})`);
    expect(takeoverMs).toBeLessThan(LEASE_TTL_MS + LEASE_TTL_MS / 3 + 1000);
    expect(takeover.epoch).toBeGreaterThan(settled[leaderIdx]?.epoch ?? 0);
    expect(takeover.holder).not.toBe(leaderId);

    const done = await until(async () => {
      const run = await call<RunView>(follower.httpUrl, 'GET', runPath);
      return run.status === 'completed' ? run : undefined;
    }, 'the run to complete');
    // created (0) → stage 1 → stage 2 → stage 3 → completed: each transition stored once.
    expect(done).toMatchObject({ stageIndex: 2, revision: 4 });

    type Entry = { action: string; actor: string; details: Record<string, unknown> };
    // The audit entry follows the stored change: wait for the completion's.
    const entries = await until(async () => {
      const page = await call<{ entries: Entry[] }>(follower.httpUrl, 'GET', `/v1/audit?topic=${topic}&limit=1000`);
      return page.entries.some((e) => e.action === 'rollout.complete') ? page.entries : undefined;
    }, 'the completion audited');
    const releases = entries.filter((e) => e.action === 'rollout.release' && e.details.runId === pub.rollout.runId);
    expect(releases.map((e) => e.details.stage).sort()).toEqual([1, 2, 3]);
    const byStage = new Map(releases.map((e) => [e.details.stage, e]));
    expect(byStage.get(1)?.actor).toBe('ops');
    expect(byStage.get(2)).toMatchObject({ actor: 'scheduler', details: { epoch: settled[leaderIdx]?.epoch } });
    expect(byStage.get(3)).toMatchObject({ actor: 'scheduler', details: { epoch: takeover.epoch } });
    expect(entries.filter((e) => e.action === 'rollout.complete')).toHaveLength(1);

    const { releases: stored } = await call<{ releases: Array<{ scopeKey: string; runId?: string }> }>(
      follower.httpUrl,
      'GET',
      `/v1/topics/${topic}/versions/1/releases`,
    );
    expect(stored.map((r) => r.scopeKey).sort()).toEqual(['', 'cluster=canary', 'region=eu']);
    expect(b.child.exitCode === null || a.child.exitCode === null).toBe(true);
  });
});
