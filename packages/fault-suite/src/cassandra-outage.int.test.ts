// Scenarios on a Cassandra node of this file's own (never the shared one), with real
// publish and consume processes and the s3proxy regions:
//
// 1. Cassandra stopped, then started: polls keep answering from the consume service's
//    cache (and say `stale`); a publish fails with 503 / UNAVAILABLE and writes nothing;
//    both services recover by themselves when the node is back.
// 2. The publish service killed between the upload and the commit: no version is visible,
//    and the orphaned objects are removed by the sweep of the next leader.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cassandraNode, startQuireProcess, uniqueBucket, uniqueKeyspace, type CassandraNode, type QuireProcess } from '@quire/test-servers';
import type { Stores } from '@quire/service-kit';
import { fault, objectKeys, ok, pollBody, rest, serviceEnv, storesOf, until, type Deployment, type PollAnswer } from './harness.ts';

const { s3 } = inject('quireServers');
let node: CassandraNode;
let deployment: Deployment;
let stores: Stores | undefined;
const procs: QuireProcess[] = [];

async function start(app: 'publish-service' | 'consume-service', extra: Record<string, string> = {}): Promise<QuireProcess> {
  const p = await startQuireProcess(app, serviceEnv(deployment, extra));
  procs.push(p);
  return p;
}

beforeAll(async () => {
  node = await cassandraNode({ heap: '512M' });
  await node.start();
  deployment = {
    cassandra: { contactPoints: [node.listen], port: node.port, localDataCenter: node.localDataCenter },
    keyspace: uniqueKeyspace('fault_outage'),
    replicationFactor: 1,
    regions: s3.regions.map((r) => ({ ...r, bucket: uniqueBucket(`fault-${r.name}`) })),
  };
  stores = await storesOf(deployment);
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await stores?.close();
  await node?.wipe();
});

describe('fault suite: Cassandra outage (own node)', () => {
  it('Cassandra stopped, then started: polls answer from the cache, publish is refused and writes nothing, both recover', { timeout: 300_000 }, async () => {
    const publish = await start('publish-service');
    const consume = await start('consume-service');
    const topic = 'fault.outage';
    await ok(publish.httpUrl, 'POST', '/v1/topics', { name: topic, inlineThresholdBytes: 1024 });
    await ok(publish.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'small inline v1' });
    const v2 = await ok<{ version: { version: number } }>(publish.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'x'.repeat(4096) });
    expect(v2.version.version).toBe(2);
    await until(async () => {
      const r = await ok<PollAnswer>(consume.httpUrl, 'POST', '/v1/poll', pollBody('warm', [{ topic }]));
      return r.updates[0]?.version.version === 2 ? true : undefined;
    }, 'the consume service to serve v2');
    const objectsBefore = await objectKeys(stores as Stores, `topics/${topic}/`);
    expect(objectsBefore).toHaveLength(deployment.regions.length);

    // Twenty consumers hold long-polls when the node goes down.
    const held = Array.from({ length: 20 }, (_, i) => rest<PollAnswer>(consume.httpUrl, 'POST', '/v1/poll', pollBody(`held-${i}`, [{ topic, knownVersion: 2 }], 20_000)));
    const stoppedAt = Date.now();
    await node.stop();

    // Polls keep answering from the cache: a fresh consumer gets v2, and the answer says stale.
    const during = await until(async () => {
      const r = await ok<PollAnswer>(consume.httpUrl, 'POST', '/v1/poll', pollBody('fresh-during-outage', [{ topic }]));
      return r.stale ? r : undefined;
    }, 'a poll answered stale while Cassandra is down', 30_000);
    expect(during.updates.map((u) => u.version.version)).toEqual([2]);
    expect(during.errors).toEqual([]);
    let answered = 0;
    for (let i = 0; i < 50; i++) {
      const r = await rest<PollAnswer>(consume.httpUrl, 'POST', '/v1/poll', pollBody(`c-${i}`, [{ topic, knownVersion: i % 2 === 0 ? 0 : 2 }]));
      if (r.status === 200 && (i % 2 === 1 || r.body.updates[0]?.version.version === 2)) answered++;
    }
    expect(answered).toBe(50);

    // Publish is refused with 503 / UNAVAILABLE.
    const refused = await rest<{ error?: { code?: string } }>(publish.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'y'.repeat(4096) });
    expect(refused.status).toBe(503);
    expect(refused.body.error?.code).toBe('UNAVAILABLE');
    const refusedInline = await rest<{ error?: { code?: string } }>(publish.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'inline while down' });
    expect(refusedInline.status).toBe(503);
    // Nothing was written by the refused publishes: only v2's objects exist.
    expect(await objectKeys(stores as Stores, `topics/${topic}/`)).toEqual(objectsBefore);
    // The held long-polls were not dropped: each answers (no update) by its wait.
    const heldAnswers = await Promise.all(held);
    expect(heldAnswers.map((r) => r.status)).toEqual(heldAnswers.map(() => 200));
    expect(heldAnswers.every((r) => r.body.updates.length === 0)).toBe(true);

    // Back: the node starts; both services recover by themselves.
    const downMs = Date.now() - stoppedAt;
    await node.start();
    const backAt = Date.now();
    // Retried with one publishId, as a publisher must: while the node comes back, an attempt
    // may be applied and still answer an error; its retry then gets the same version (200).
    const v3 = await until(async () => {
      const r = await rest<{ version: { version: number } }>(publish.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'z'.repeat(4096), publishId: 'fault-outage-v3' });
      return r.status === 201 || r.status === 200 ? r.body : undefined;
    }, 'publish to work again', 60_000, 200);
    const publishBackMs = Date.now() - backAt;
    // The refused publishes took no version number: v3 follows v2.
    expect(v3.version.version).toBe(3);
    const fresh = await until(async () => {
      const r = await ok<PollAnswer>(consume.httpUrl, 'POST', '/v1/poll', pollBody('fresh-after', [{ topic }]));
      return !r.stale && r.updates[0]?.version.version === 3 ? r : undefined;
    }, 'the consume service to be fresh and serve v3', 60_000, 200);
    const consumeBackMs = Date.now() - backAt;
    expect(fresh.errors).toEqual([]);
    await Promise.all([publish.stop(), consume.stop()]);
    fault(
      `cassandra stopped ${(downMs / 1000).toFixed(1)} s: 50/50 polls answered from cache (stale=true), 20/20 held long-polls answered, publish 503 UNAVAILABLE with 0 objects / 0 versions written; after restart publish back in ${publishBackMs} ms, consume fresh in ${consumeBackMs} ms`,
    );
  });

  it('publish-service killed between upload and commit: no version visible, the orphan is swept', async () => {
    const shortLease = { QUIRE_LEASE_TTL_MS: '1500', QUIRE_SCHEDULER_TICK_MS: '100' };
    const publish = await start('publish-service', shortLease);
    const topic = 'fault.crash-commit';
    await ok(publish.httpUrl, 'POST', '/v1/topics', { name: topic, inlineThresholdBytes: 1024 });
    const SIZE = 24 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024, 7);
    // A streamed publish: the service reads the topic (Cassandra), then streams the body to S3.
    const req = request(`${publish.httpUrl}/v1/topics/${topic}/versions`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(SIZE), 'x-quire-actor': 'fault-suite' },
    });
    const done = new Promise<number | string>((resolve) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (e) => resolve(e.message));
    });
    const write = (b: Buffer): Promise<void> => new Promise((resolve) => (req.write(b) ? resolve() : req.once('drain', resolve)));
    // 16 MiB taken by the server: more than loopback socket buffers hold, so it is reading
    // the body, which it does only after its last Cassandra read before the commit.
    let sent = 0;
    while (sent < 16 * 1024 * 1024) {
      await write(chunk);
      sent += chunk.length;
    }
    // Freeze the node: the commit, the next Cassandra call, cannot complete.
    node.freeze();
    try {
      while (sent < SIZE) {
        await write(chunk);
        sent += chunk.length;
      }
      req.end();
      // The upload completes in every region; the commit hangs. Crash the service now.
      await until(async () => ((await objectKeys(stores as Stores, `topics/${topic}/`)).length === deployment.regions.length ? true : undefined), 'the upload to land in every region', 30_000, 50);
      await publish.kill();
    } finally {
      node.thaw();
    }
    expect(typeof (await done)).toBe('string'); // the connection died with the process
    const orphans = await objectKeys(stores as Stores, `topics/${topic}/`);
    expect(orphans).toHaveLength(deployment.regions.length);
    // No version is visible, through the store or a fresh publish service.
    expect(await until(async () => (await (stores as Stores).store.headVersion(topic).catch(() => undefined)), 'the store to answer')).toBe(0);

    // A new publish service (the next leader) sweeps the orphan after its grace period.
    const sweeper = await start('publish-service', { ...shortLease, QUIRE_ORPHAN_GRACE_MS: '2000', QUIRE_ORPHAN_SWEEP_EVERY_MS: '500' });
    const list = await ok<{ versions: unknown[] }>(sweeper.httpUrl, 'GET', `/v1/topics/${topic}/versions`);
    expect(list.versions).toEqual([]);
    const startedAt = Date.now();
    await until(async () => ((await objectKeys(stores as Stores, `topics/${topic}/`)).length === 0 ? true : undefined), 'the orphan to be swept', 60_000, 200);
    // A publish after it works, and is version 1 (the crashed one left no number behind).
    const next = await ok<{ version: { version: number } }>(sweeper.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'q'.repeat(2048) });
    expect(next.version.version).toBe(1);
    fault(`publish-service killed between upload (${SIZE / 1024 / 1024} MiB, ${orphans.length} regions) and commit: 0 versions visible; ${orphans.length} orphan objects swept ${Date.now() - startedAt} ms after a new leader started (grace 2 s)`);
  });
});
