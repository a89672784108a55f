// 1,000 long-polls re-arming after a consume restart: two consume processes (A and B) on
// the shared Cassandra (own keyspace); 1,000 raw REST long-poll loops all held on A. A gets
// SIGTERM: it answers every held poll at once, each answer suggesting a re-arm delay
// (`nextPollMs`) spread over the drain window, and exits. The loops re-arm after that delay
// (on a connection error they move to the other endpoint), so B takes them over spread in
// time, with no server error; a new version then reaches all 1,000 through B, and A comes
// back on its old address.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dropKeyspace, freePort, startQuireProcess, uniqueBucket, uniqueKeyspace, type QuireProcess } from '@quire/test-servers';
import { fault, ok, pollBody, serviceEnv, until, type Deployment, type PollAnswer } from './harness.ts';

const { cassandra, s3 } = inject('quireServers');
const deployment: Deployment = {
  cassandra,
  keyspace: uniqueKeyspace('fault_rearm'),
  replicationFactor: 1,
  regions: s3.regions.map((r) => ({ ...r, bucket: uniqueBucket(`fault-rearm-${r.name}`) })),
};
const CLIENTS = 1000;
const DRAIN_WINDOW_MS = 3000;
const procs: QuireProcess[] = [];

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await dropKeyspace(cassandra, deployment.keyspace).catch(() => {});
});

let publish: QuireProcess;
beforeAll(async () => {
  publish = await startQuireProcess('publish-service', serviceEnv(deployment));
  procs.push(publish);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

describe('fault suite: long-polls re-arming after a consume restart', () => {
  it(`${CLIENTS} long-polls re-arm spread over the drain window, with no error storm`, async () => {
    const topic = 'fault.rearm';
    await ok(publish.httpUrl, 'POST', '/v1/topics', { name: topic });
    await ok(publish.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'v1' });
    const [httpA, grpcA] = [await freePort(), await freePort()];
    const envA = serviceEnv(deployment, { QUIRE_CONSUME_HTTP_PORT: String(httpA), QUIRE_CONSUME_GRPC_PORT: String(grpcA) });
    let a = await startQuireProcess('consume-service', envA);
    const b = await startQuireProcess('consume-service', serviceEnv(deployment));
    procs.push(a, b);
    const endpoints = [a.httpUrl, b.httpUrl];

    // The loops: long-poll, apply, re-arm after nextPollMs; on a connection error move to the other endpoint.
    let stopped = false;
    const abort = new AbortController();
    const stats = { serverErrors: [] as string[], connectionErrors: 0, drainedDelays: [] as number[], drainedAt: [] as number[], rearmedAt: [] as number[], rearmAfterAnswer: [] as number[] };
    const known = new Array<number>(CLIENTS).fill(0);
    const heldOnA = new Set<number>();
    let drainStartedAt = 0;
    const loop = async (i: number): Promise<void> => {
      let ep = 0;
      let errorsInARow = 0;
      let drained = false;
      let sawDrain = false;
      let drainedAnswerAt = 0;
      while (!stopped) {
        const at = Date.now();
        if (drained && ep === 1) {
          // The first re-arm on B after A drained this loop's poll.
          stats.rearmedAt.push(at - drainStartedAt);
          stats.rearmAfterAnswer.push(at - drainedAnswerAt);
          drained = false;
        }
        try {
          const res = await fetch(`${endpoints[ep]}/v1/poll`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(pollBody(`c-${i}`, [{ topic, knownVersion: known[i] }], 20_000)),
            signal: abort.signal,
          });
          if (ep === 0) heldOnA.add(i);
          const body = (await res.json()) as PollAnswer;
          errorsInARow = 0;
          if (res.status !== 200) {
            stats.serverErrors.push(`${res.status} ${JSON.stringify(body)}`);
            await sleep(500);
            continue;
          }
          const u = body.updates[0];
          if (u !== undefined) known[i] = u.version.version;
          if (body.nextPollMs > 0) {
            if (ep === 0 && drainStartedAt > 0 && !sawDrain) {
              stats.drainedDelays.push(body.nextPollMs);
              drainedAnswerAt = Date.now();
              stats.drainedAt.push(drainedAnswerAt - drainStartedAt);
              drained = true;
              sawDrain = true;
            }
            await sleep(body.nextPollMs);
          }
        } catch {
          if (stopped) return;
          stats.connectionErrors++;
          errorsInARow++;
          ep = (ep + 1) % endpoints.length;
          await sleep(Math.random() * 250 * Math.min(8, 2 ** errorsInARow));
        }
      }
    };
    const loops = Array.from({ length: CLIENTS }, (_, i) => loop(i));
    try {
      await until(async () => (known.every((v) => v === 1) && heldOnA.size === CLIENTS ? true : undefined), `all ${CLIENTS} loops to hold v1 on A`, 60_000, 100);
      await sleep(500); // every loop is back in a held poll on A
      drainStartedAt = Date.now();
      const code = await a.stop();
      const drainMs = Date.now() - drainStartedAt;
      expect(code).toBe(0);

      // Every held poll on A was answered with a re-arm delay, spread over the window.
      await until(async () => (stats.rearmedAt.length >= CLIENTS ? true : undefined), `all ${CLIENTS} loops to re-arm on B`, 60_000, 100);
      expect(stats.drainedDelays).toHaveLength(CLIENTS);
      for (let q = 0; q < 4; q++) {
        const inQuarter = stats.drainedDelays.filter((d) => d > (q * DRAIN_WINDOW_MS) / 4 && d <= ((q + 1) * DRAIN_WINDOW_MS) / 4).length;
        expect(inQuarter).toBeGreaterThan(CLIENTS / 10);
      }
      expect(stats.serverErrors).toEqual([]);
      const rearmErrors = stats.connectionErrors;

      // The re-armed polls work: a new version reaches every loop through B.
      const published = Date.now();
      await ok(publish.httpUrl, 'POST', `/v1/topics/${topic}/versions`, { data: 'v2' });
      await until(async () => (known.every((v) => v === 2) ? true : undefined), `v2 to reach all ${CLIENTS} loops`, 60_000, 50);
      const v2Ms = Date.now() - published;

      // A comes back on its address and answers.
      a = await startQuireProcess('consume-service', envA);
      procs.push(a);
      const back = await ok<PollAnswer>(a.httpUrl, 'POST', '/v1/poll', pollBody('after-restart', [{ topic }]));
      expect(back.updates.map((u) => u.version.version)).toEqual([2]);
      expect(stats.serverErrors).toEqual([]);
      const q4 = (xs: number[]) => [0.1, 0.5, 0.9, 1].map((q) => quantile(xs, q)).join('/');
      fault(
        `${CLIENTS} long-polls, consume A restarted: all answered by the drain (last ${quantile(stats.drainedAt, 1)} ms after SIGTERM, exit after ${drainMs} ms); re-armed on B p10/p50/p90/max ${q4(stats.rearmAfterAnswer)} ms after their drained answer (window ${DRAIN_WINDOW_MS} ms), ${q4(stats.rearmedAt)} ms after SIGTERM; ${stats.serverErrors.length} server errors, ${rearmErrors} connection errors (${(rearmErrors / CLIENTS).toFixed(2)} per client, 1 = one refused re-arm on A each); v2 reached all ${CLIENTS} via B in ${v2Ms} ms`,
      );
    } finally {
      stopped = true;
      abort.abort();
      await Promise.allSettled(loops);
    }
  });
});
