// A 3-node Cassandra ring of this file's own (127.0.0.2, .3, .4; heap 512M each), keyspace
// RF 3, the services at their default LOCAL_QUORUM / LOCAL_SERIAL: with one data centre and
// RF 3 that is QUORUM (2 of 3 replicas) for every read and write, and a Paxos quorum for
// the version numbers. One node is stopped: publish and poll keep working. It comes back,
// and ANOTHER node is stopped: every version written while the first was away is still
// there and readable (a quorum that includes the returned node), nothing lost.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cassandraRing, startQuireProcess, uniqueBucket, uniqueKeyspace, waitForRing, type CassandraNode, type QuireProcess } from '@quire/test-servers';
import { fault, ok, pollBody, rest, serviceEnv, until, type Deployment, type PollAnswer } from './harness.ts';

const { s3 } = inject('quireServers');
let ring: CassandraNode[] = [];
let deployment: Deployment;
const procs: QuireProcess[] = [];

beforeAll(async () => {
  ring = await cassandraRing(3, { heap: '512M' });
  for (const n of ring) await n.start();
  await waitForRing(ring);
  const first = ring[0] as CassandraNode;
  deployment = {
    cassandra: { contactPoints: ring.map((n) => n.listen), port: first.port, localDataCenter: first.localDataCenter },
    keyspace: uniqueKeyspace('fault_ring'),
    replicationFactor: 3,
    regions: s3.regions.map((r) => ({ ...r, bucket: uniqueBucket(`fault-ring-${r.name}`) })),
  };
}, 480_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(ring.map((n) => n.wipe()));
});

describe('fault suite: 3-node Cassandra ring (RF 3, LOCAL_QUORUM)', () => {
  // Node starts take 10-50 s each on a loaded 2-core machine: a generous limit (not a timing goal).
  it('one node stopped: publish and poll keep working; nothing lost when it returns', { timeout: 480_000 }, async () => {
    const publish = await startQuireProcess('publish-service', serviceEnv(deployment));
    procs.push(publish);
    const consume = await startQuireProcess('consume-service', serviceEnv(deployment));
    procs.push(consume);
    const topic = 'fault.ring';
    await ok(publish.httpUrl, 'POST', '/v1/topics', { name: topic, inlineThresholdBytes: 1024 });
    const sent = new Map<number, string>();
    // Each publish carries its own publishId, as a publisher that retries must: a write that
    // timed out at the coordinator may still have been applied, and the retry must then
    // get the same version back (200, replayed) rather than a second one.
    const publishOne = async (i: number): Promise<{ ok: boolean; ms: number }> => {
      const data = i % 3 === 0 ? `v${i}:`.padEnd(2048, 'r') : `v${i}`;
      const t0 = Date.now();
      const r = await rest<{ version: { version: number } }>(publish.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data, publishId: `fault-ring-${i}` });
      if (r.status !== 201 && r.status !== 200) return { ok: false, ms: Date.now() - t0 };
      sent.set(r.body.version.version, data);
      return { ok: true, ms: Date.now() - t0 };
    };
    const latestPolled = async (instance: string): Promise<number | undefined> => {
      const r = await rest<PollAnswer>(consume.httpUrl, 'POST', '/v1/poll', pollBody(instance, [{ topic }]));
      return r.status === 200 ? r.body.updates[0]?.version.version : undefined;
    };
    for (let i = 1; i <= 5; i++) expect((await publishOne(i)).ok).toBe(true);
    await until(async () => ((await latestPolled('warm')) === 5 ? true : undefined), 'v5 served');

    // Node 3 down.
    const third = ring[2] as CassandraNode;
    await third.stop();
    const during: Array<{ ok: boolean; ms: number }> = [];
    let pollsOk = 0;
    for (let i = 6; i <= 25; i++) {
      during.push(await publishOne(i));
      const seen = await until(async () => ((await latestPolled(`during-${i}`)) === i ? true : undefined), `v${i} served with node 3 down`, 30_000, 50).catch(() => false);
      if (seen) pollsOk++;
    }
    expect(during.filter((r) => !r.ok)).toEqual([]);
    expect(pollsOk).toBe(20);

    // Node 3 back; then node 2 down: the quorum is now nodes 1 and 3.
    const backAt = Date.now();
    await third.start();
    const restartMs = Date.now() - backAt;
    await waitForRing(ring);
    const second = ring[1] as CassandraNode;
    await second.stop();
    // Every version, 1..25, listed and readable, each with the bytes its publisher sent.
    const listed = await until(async () => {
      const page = await ok<{ versions: Array<{ version: number }> }>(publish.httpUrl, 'GET', `/v1/topics/${topic}/versions?limit=100&order=asc`);
      return page.versions.length === 25 ? page.versions.map((v) => v.version) : undefined;
    }, 'the versions listed with node 2 down', 60_000, 200);
    expect(listed).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    let readable = 0;
    for (const [version, data] of sent) {
      const res = await fetch(`${consume.httpUrl}/v1/topics/${topic}/versions/${version}/data`);
      if (res.status === 200 && (await res.text()) === data) readable++;
    }
    expect(readable).toBe(25);
    // And publishing still works with nodes 1 and 3.
    const after = await until(async () => {
      const r = await publishOne(26);
      return r.ok ? r : undefined;
    }, 'a publish with node 2 down', 60_000, 200);
    // Version 26, exactly once, even if an earlier attempt was applied but not answered.
    expect(sent.get(26)).toBe(`v26`);
    expect(sent.size).toBe(26);
    const slowest = Math.max(...during.map((r) => r.ms));
    fault(
      `3-node ring RF 3 LOCAL_QUORUM, node 3 stopped: 20/20 publishes ok (slowest ${slowest} ms), 20/20 polls served them; node 3 back in ${restartMs} ms, then node 2 stopped: 25/25 versions listed and readable (0 lost), publish ok in ${after.ms} ms`,
    );
  });
});
