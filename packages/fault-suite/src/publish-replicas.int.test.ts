// Scenarios with several publish-service processes on the shared Cassandra (own keyspace)
// and the s3proxy regions:
//
// 1. Two replicas, 8 concurrent publishers × 50 publishes, spread over both: versions
//    1..400 exist exactly once each, and every one reads back its own bytes.
// 2. Three replicas with a short scheduler lease; the leader is killed mid-rollout: one
//    other replica takes over and the run completes with each stage released once.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dropKeyspace, startQuireProcess, uniqueBucket, uniqueKeyspace, type QuireProcess } from '@quire/test-servers';
import { fault, ok, serviceEnv, until, type Deployment } from './harness.ts';

const { cassandra, s3 } = inject('quireServers');
const LEASE_TTL_MS = 1500;
const deployment: Deployment = {
  cassandra,
  keyspace: uniqueKeyspace('fault_replicas'),
  replicationFactor: 1,
  regions: s3.regions.map((r) => ({ ...r, bucket: uniqueBucket(`fault-rep-${r.name}`) })),
};
const env = serviceEnv(deployment, { QUIRE_LEASE_TTL_MS: String(LEASE_TTL_MS), QUIRE_SCHEDULER_TICK_MS: '100' });
const replicas: QuireProcess[] = [];

beforeAll(async () => {
  // The first migrates the keyspace and creates the buckets; the others start after it.
  replicas.push(await startQuireProcess('publish-service', { ...env, QUIRE_REPLICA_ID: 'replica-1' }));
  replicas.push(...(await Promise.all(['replica-2', 'replica-3'].map((id) => startQuireProcess('publish-service', { ...env, QUIRE_REPLICA_ID: id })))));
});

afterAll(async () => {
  await Promise.all(replicas.map((p) => p.stop()));
  await dropKeyspace(cassandra, deployment.keyspace).catch(() => {});
});

interface Version {
  version: number;
  publishId: string;
  sha256: string;
  size: number;
  pointer: { kind: string };
}

describe('fault suite: publish replicas', () => {
  it('two replicas, 8 concurrent publishers × 50: versions 1..400 exactly once, each readable', async () => {
    const [a, b] = replicas as [QuireProcess, QuireProcess];
    const topic = 'fault.concurrent';
    await ok(a.httpUrl, 'POST', '/v1/topics', { name: topic, inlineThresholdBytes: 1024 });
    const PUBLISHERS = 8;
    const EACH = 50;
    const payload = (p: number, i: number): string => (i % 10 === 9 ? `p${p}-${i}:`.padEnd(2048, String(p)) : `p${p}-${i}`);
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: PUBLISHERS }, async (_, p) => {
        const mine: Array<{ version: number; data: string }> = [];
        for (let i = 0; i < EACH; i++) {
          const target = (p + i) % 2 === 0 ? a : b;
          const data = payload(p, i);
          const r = await ok<{ version: Version }>(target.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data });
          mine.push({ version: r.version.version, data });
        }
        return mine;
      }),
    );
    const elapsed = Date.now() - started;
    const all = results.flat();
    const numbers = all.map((r) => r.version).sort((x, y) => x - y);
    expect(numbers).toEqual(Array.from({ length: PUBLISHERS * EACH }, (_, i) => i + 1));

    // The store holds exactly those, each once, each with the bytes its publisher sent.
    const listed: Version[] = [];
    let cursor: string | undefined;
    do {
      const page = await ok<{ versions: Version[]; next?: string }>(a.httpUrl, 'GET', `/v1/topics/${topic}/versions?limit=500&order=asc${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      listed.push(...page.versions);
      cursor = page.next;
    } while (cursor);
    expect(listed.map((v) => v.version)).toEqual(numbers);
    expect(new Set(listed.map((v) => v.publishId)).size).toBe(listed.length);
    const byVersion = new Map(listed.map((v) => [v.version, v]));
    let readable = 0;
    for (const r of all) {
      const res = await fetch(`${b.httpUrl}/v1/topics/${topic}/versions/${r.version}/data`);
      const bytes = Buffer.from(await res.arrayBuffer());
      const sha = createHash('sha256').update(bytes).digest('hex');
      if (res.status === 200 && bytes.toString() === r.data && sha === byVersion.get(r.version)?.sha256) readable++;
    }
    expect(readable).toBe(all.length);
    const s3Count = listed.filter((v) => v.pointer.kind === 's3').length;
    fault(`2 publish replicas, ${PUBLISHERS} publishers × ${EACH}: versions 1..${all.length} exactly once (0 duplicates, 0 gaps), ${readable}/${all.length} readable (${s3Count} in S3), ${Math.round((all.length / elapsed) * 1000)} publishes/s`);
  });

  it('leader killed mid-rollout: one other replica continues, each stage released once', async () => {
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
    type Entry = { action: string; actor: string; details: Record<string, unknown> };
    const views = (procs: QuireProcess[]) => Promise.all(procs.map((p) => ok<SchedulerView>(p.httpUrl, 'GET', '/v1/scheduler')));
    const settled = await until(async () => {
      const v = await views(replicas);
      return v.filter((s) => s.leader).length === 1 ? v : undefined;
    }, 'one leader');
    const leaderIdx = settled.findIndex((s) => s.leader);
    const leader = replicas[leaderIdx] as QuireProcess;
    const others = replicas.filter((p) => p !== leader);
    const via = others[0] as QuireProcess;

    const topic = 'fault.rollout';
    await ok(via.httpUrl, 'POST', '/v1/topics', {
      name: topic,
      rolloutPlan: {
        stages: [
          { name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 },
          { name: 'eu', scope: { region: 'eu' }, bakeMs: 500 },
          { name: 'us', scope: { region: 'us' }, bakeMs: 1500 },
          { name: 'global', scope: {}, bakeMs: 500 },
        ],
      },
    });
    const pub = await ok<{ rollout: RunView }>(via.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'v1', useRolloutPlan: true });
    const runPath = `/v1/topics/${topic}/rollouts/${pub.rollout.runId}`;
    const audit = async (): Promise<Entry[]> => (await ok<{ entries: Entry[] }>(via.httpUrl, 'GET', `/v1/audit?topic=${topic}&limit=1000`)).entries;
    // Stage 2 released by the leader (and audited): the kill lands mid-rollout.
    await until(async () => ((await audit()).some((e) => e.action === 'rollout.release' && e.details.stage === 2) ? true : undefined), 'stage 2 released');
    const killedAt = Date.now();
    await leader.kill();
    replicas.splice(replicas.indexOf(leader), 1);
    const takeover = await until(async () => {
      const v = await views(others);
      return v.filter((s) => s.leader).length === 1 ? v.find((s) => s.leader) : undefined;
    }, 'one other replica to lead', 20_000, 20);
    const takeoverMs = Date.now() - killedAt;
    const done = await until(async () => {
      const run = await ok<RunView>(via.httpUrl, 'GET', runPath);
      return run.status === 'completed' ? run : undefined;
    }, 'the run to complete');
    // created → stage 1 → 2 → 3 → 4 → completed: each transition stored once.
    expect(done).toMatchObject({ stageIndex: 3, revision: 5 });
    const entries = await until(async () => {
      const e = await audit();
      return e.some((x) => x.action === 'rollout.complete') ? e : undefined;
    }, 'the completion audited');
    const releases = entries.filter((e) => e.action === 'rollout.release' && e.details.runId === pub.rollout.runId);
    expect(releases.map((e) => e.details.stage).sort()).toEqual([1, 2, 3, 4]);
    expect(entries.filter((e) => e.action === 'rollout.complete')).toHaveLength(1);
    const epochs = new Set(releases.filter((e) => e.actor === 'scheduler').map((e) => e.details.epoch));
    expect(takeover?.epoch).toBeGreaterThan(settled[leaderIdx]?.epoch ?? 0);
    const { releases: stored } = await ok<{ releases: Array<{ scopeKey: string }> }>(via.httpUrl, 'GET', `/v1/topics/${topic}/versions/1/releases`);
    expect(stored.map((r) => r.scopeKey).sort()).toEqual(['', 'cluster=canary', 'region=eu', 'region=us']);
    fault(`leader killed mid-rollout (3 replicas, lease ${LEASE_TTL_MS} ms): ${takeover?.replicaId} took over in ${takeoverMs} ms (epoch ${settled[leaderIdx]?.epoch} → ${takeover?.epoch}); 4/4 stages released exactly once over ${epochs.size} leader epochs`);
  });
});
