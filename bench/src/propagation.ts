// 1. Propagation: from the start of the publish call to each subscriber's handler, for
// Quire long-poll consumers, Quire 30 s polling consumers and etcd watchers (the peer),
// alternating in the same run; plus an S3-backed version to long-poll consumers.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { createPublisher, type Publisher } from '@quire/client';
import type { Context } from './context.ts';
import { nowNs, dropQuireEnv, quireEnv, readStageTrace, startConsume, startPublish, startWorker, type Worker } from './env.ts';
import { stageBreakdown, type PublishMark, type StageRow } from './stages.ts';
import { latency, spread, type Latency, type Spread } from './stats.ts';

export interface PropagationRow {
  system: 'quire long-poll' | 'quire polling' | 'etcd watch' | 'quire long-poll, S3 payload';
  consumers: number;
  payloadBytes: number;
  /** One entry per repetition (a publish / put). */
  reps: Array<Latency & { missing: number }>;
  /** Publish to the first subscriber: the publish call, the consume service learning of it (change hint / feed) and one answer; the rest of p50/p99 is the fan-out. */
  first?: Spread;
  p50: Spread;
  p99: Spread;
  max: Spread;
  /** Duration of the publish / put call itself (ms): the part of the latency before any fan-out. */
  callMs: Spread;
  /** Quire long-poll: where the time goes, from the consume service's stage markers (stages.ts). */
  stages?: StageRow[];
}

export interface PropagationResult {
  changePollMs: number;
  /** The consume service watched the publish service's change hints (the default deployment, ADR 0009). */
  changeHints?: boolean;
  pollIntervalMs: number;
  rows: PropagationRow[];
}

const WORKERS = 2;

function row(system: PropagationRow['system'], consumers: number, payloadBytes: number, reps: PropagationRow['reps'], calls: number[]): PropagationRow {
  return {
    callMs: spread(calls),
    system,
    consumers,
    payloadBytes,
    reps,
    first: spread(reps.map((r) => r.min)),
    p50: spread(reps.map((r) => r.p50)),
    p99: spread(reps.map((r) => r.p99)),
    max: spread(reps.map((r) => r.max)),
  };
}

/** Each subscriber's latency; `received`: when the SDK consumers first / last got the poll answer (ms, Quire only). */
async function collect(workers: Worker[], version: number, t0: number, timeoutMs: number): Promise<Latency & { missing: number; received?: { firstMs: number; lastMs: number } }> {
  const parts = await Promise.all(
    workers.map((w) => w.call<{ ns: number[]; missing: number; received?: { first: number; last: number } }>({ op: 'waitVersion', version, timeoutMs })),
  );
  const ms = parts.flatMap((p) => p.ns.map((t) => (t - t0) / 1e6));
  const got = parts.flatMap((p) => (p.received === undefined ? [] : [p.received]));
  const received = got.length === 0 ? undefined : { firstMs: (Math.min(...got.map((r) => r.first)) - t0) / 1e6, lastMs: (Math.max(...got.map((r) => r.last)) - t0) / 1e6 };
  return { ...latency(ms), missing: parts.reduce((a, p) => a + p.missing, 0), ...(received === undefined ? {} : { received }) };
}

async function subscribers(n: number, start: (w: Worker, share: number) => Promise<unknown>, name: string): Promise<Worker[]> {
  const workers = await Promise.all(Array.from({ length: WORKERS }, (_, i) => startWorker(`${name}-${i}`)));
  await Promise.all(workers.map((w, i) => start(w, Math.floor(n / WORKERS) + (i < n % WORKERS ? 1 : 0))));
  return workers;
}

export async function propagation(ctx: Context): Promise<PropagationResult> {
  const { sizes } = ctx;
  const changePollMs = 150;
  const q = quireEnv(ctx.servers, 'prop', { QUIRE_CHANGE_POLL_MS: String(changePollMs) });
  const publishProc = await startPublish(q);
  // As deployed (deploy/, quickstart): the consume service watches the publish service's change hints.
  // With the stage markers (hint received, topic reloaded, held polls answered) traced to a file.
  const traceDir = mkdtempSync(join(tmpdir(), 'quire-bench-stages-'));
  const traceFile = join(traceDir, 'consume.jsonl');
  const consumeProc = await startConsume(q, { QUIRE_PUBLISH_HINT_ENDPOINTS: publishProc.grpcAddress }, { stageTraceFile: traceFile });
  const marks = new Map<PropagationRow, PublishMark[]>();
  const pub: Publisher = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'bench', regions: ['region-a'] });
  const etcd = new Etcd3({ hosts: ctx.etcd.endpoint });
  const rows: PropagationRow[] = [];
  const payload = randomBytes(1024);
  try {
    for (const n of sizes.consumers) {
      const topic = `bench.prop.n${n}`;
      await pub.createTopic({ name: topic, owner: 'bench' });
      let version = (await pub.publish(topic, { data: payload })).version;
      const key = `bench/prop/n${n}`;
      ctx.progress(`propagation N=${n}: starting ${n} long-poll consumers and ${n} etcd watchers (${WORKERS} processes each)`);
      const quire = await subscribers(n, (w, share) => w.call({ op: 'quireConsumers', endpoint: consumeProc.grpcAddress, topic, n: share, longPollWaitMs: 20_000 }), 'lp');
      const watchers = await subscribers(n, (w, share) => w.call({ op: 'etcdWatchers', endpoint: ctx.etcd.endpoint, key, n: share }), 'etcd');
      const lp: PropagationRow['reps'] = [];
      const et: PropagationRow['reps'] = [];
      const lpCall: number[] = [];
      const etCall: number[] = [];
      const lpMarks: PublishMark[] = [];
      try {
        for (let rep = 1; rep <= sizes.reps; rep++) {
          // Quire: publish a 1 KiB inline version.
          await new Promise((r) => setTimeout(r, 500));
          let t0 = nowNs();
          version = (await pub.publish(topic, { data: payload })).version;
          lpCall.push((nowNs() - t0) / 1e6);
          const { received, ...got } = await collect(quire, version, t0, 30_000);
          lp.push(got);
          lpMarks.push({
            topic,
            version,
            t0,
            callMs: lpCall.at(-1) as number,
            firstReceivedMs: received?.firstMs ?? Number.NaN,
            lastReceivedMs: received?.lastMs ?? Number.NaN,
            firstMs: got.min,
            lastMs: got.max,
          });
          // etcd: put 1 KiB whose first 12 bytes name the put.
          await new Promise((r) => setTimeout(r, 500));
          const value = Buffer.concat([Buffer.from(String(rep).padEnd(12)), payload.subarray(12)]);
          t0 = nowNs();
          await etcd.put(key).value(value);
          etCall.push((nowNs() - t0) / 1e6);
          et.push(await collect(watchers, rep, t0, 30_000));
          ctx.progress(`propagation N=${n} rep ${rep}/${sizes.reps}: quire p99 ${lp.at(-1)?.p99.toFixed(1)} ms, etcd p99 ${et.at(-1)?.p99.toFixed(1)} ms`);
        }
      } finally {
        await Promise.all([...quire, ...watchers].map((w) => w.stop()));
      }
      const lpRow = row('quire long-poll', n, payload.length, lp, lpCall);
      marks.set(lpRow, lpMarks);
      rows.push(lpRow, row('etcd watch', n, payload.length, et, etCall));

      // Periodic polling: each rep waits up to one interval (+10% jitter).
      const pollReps = Math.min(sizes.reps, 2);
      ctx.progress(`propagation N=${n}: ${n} consumers polling every ${sizes.pollIntervalMs} ms, ${pollReps} publishes (up to ${Math.round((pollReps * sizes.pollIntervalMs * 1.1) / 1000)} s)`);
      const polling = await subscribers(n, (w, share) => w.call({ op: 'quireConsumers', endpoint: consumeProc.grpcAddress, topic, n: share, pollIntervalMs: sizes.pollIntervalMs }), 'poll');
      const pl: PropagationRow['reps'] = [];
      const plCall: number[] = [];
      try {
        for (let rep = 1; rep <= pollReps; rep++) {
          const t0 = nowNs();
          version = (await pub.publish(topic, { data: payload })).version;
          plCall.push((nowNs() - t0) / 1e6);
          pl.push(await collect(polling, version, t0, sizes.pollIntervalMs * 1.2 + 10_000));
          ctx.progress(`propagation N=${n} polling rep ${rep}/${pollReps}: p50 ${pl.at(-1)?.p50.toFixed(0)} ms`);
        }
      } finally {
        await Promise.all(polling.map((w) => w.stop()));
      }
      rows.push(row('quire polling', n, payload.length, pl, plCall));
    }

    // An S3-backed version (above the inline threshold): every consumer downloads it from S3.
    const n = sizes.s3Consumers;
    const topic = 'bench.prop.s3';
    await pub.createTopic({ name: topic, owner: 'bench', inlineThresholdBytes: 1024 });
    const big = randomBytes(sizes.s3PayloadBytes);
    let version = (await pub.publish(topic, { data: big })).version;
    ctx.progress(`propagation S3: ${n} long-poll consumers, ${sizes.s3PayloadBytes / 1024 / 1024} MiB version`);
    const s3 = Object.fromEntries(Object.entries(q.s3Options).map(([k, v]) => [k, v]));
    const consumers = await subscribers(n, (w, share) => w.call({ op: 'quireConsumers', endpoint: consumeProc.grpcAddress, topic, n: share, longPollWaitMs: 20_000, s3 }), 's3');
    const reps: PropagationRow['reps'] = [];
    const calls: number[] = [];
    try {
      for (let rep = 1; rep <= sizes.reps; rep++) {
        big.writeUInt32BE(rep, 0);
        await new Promise((r) => setTimeout(r, 500));
        const t0 = nowNs();
        version = (await pub.publish(topic, { data: big })).version;
        calls.push((nowNs() - t0) / 1e6);
        reps.push(await collect(consumers, version, t0, 120_000));
        ctx.progress(`propagation S3 rep ${rep}/${sizes.reps}: p99 ${reps.at(-1)?.p99.toFixed(0)} ms`);
      }
    } finally {
      await Promise.all(consumers.map((w) => w.stop()));
    }
    rows.push(row('quire long-poll, S3 payload', n, sizes.s3PayloadBytes, reps, calls));
  } finally {
    pub.close();
    etcd.close();
    await Promise.all([publishProc.stop(), consumeProc.stop()]);
    await dropQuireEnv(ctx.servers, q);
    // The trace is complete once the consume service exited (written at exit).
    const events = readStageTrace(traceFile);
    for (const [r, m] of marks) r.stages = stageBreakdown(m, events);
    rmSync(traceDir, { recursive: true, force: true });
  }
  return { changePollMs, changeHints: true, pollIntervalMs: sizes.pollIntervalMs, rows };
}
