// 2. Poll cost: batched no-change polls against one consume-service process, REST and gRPC,
// at several calls in flight; the limit is a bare fastify route and a bare grpc-js method
// (same Poll contract) returning the same bytes, one Node process too, measured alternately.
import * as grpc from '@grpc/grpc-js';
import { createPublisher } from '@quire/client';
import { loadQuireProto, type ConsumeServiceClient, type PbPollRequest } from '@quire/proto';
import type { Context } from './context.ts';
import { dropQuireEnv, quireEnv, startConsume, startPublish, startWorker, type Worker } from './env.ts';
import { latency, ratioSpread, spread, type Spread } from './stats.ts';

export interface PollCostRow {
  transport: 'rest' | 'grpc';
  topics: number;
  inflight: number;
  /** Per repetition: calls/s and latency. */
  quire: { rps: Spread; p50: Spread; p99: Spread; errors: number };
  bare: { rps: Spread; p50: Spread; p99: Spread; errors: number };
  /** quire rps / bare rps, per repetition. */
  ratio: Spread;
}

export interface PollCostResult {
  loadProcesses: number;
  seconds: number;
  replyBytes: { rest: number; grpc: number };
  rows: PollCostRow[];
}

const LOADERS = 2;

interface LoadOut {
  count: number;
  errors: number;
  elapsedMs: number;
  latMs: number[];
}

async function load(loaders: Worker[], kind: 'rest' | 'grpc', target: string, body: unknown, inflight: number, seconds: number): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const share = Math.max(1, Math.floor(inflight / loaders.length));
  const parts = await Promise.all(
    loaders.map((w) =>
      w.call<LoadOut>({ op: 'pollLoad', kind, target, body, inflight: share, channels: Math.max(1, Math.ceil(share / 16)), durationMs: seconds * 1000, warmupMs: 500 }),
    ),
  );
  const lat = latency(parts.flatMap((p) => p.latMs));
  const rps = parts.reduce((a, p) => a + p.count / (p.elapsedMs / 1000), 0);
  return { rps, p50: lat.p50, p99: lat.p99, errors: parts.reduce((a, p) => a + p.errors, 0) };
}

export async function pollCost(ctx: Context): Promise<PollCostResult> {
  const { sizes } = ctx;
  const maxTopics = Math.max(...sizes.pollTopics);
  const q = quireEnv(ctx.servers, 'poll');
  const publishProc = await startPublish(q);
  const pub = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'bench', regions: ['region-a'] });
  ctx.progress(`poll cost: seeding ${maxTopics} topics with one 1 KiB version each`);
  const topics = Array.from({ length: maxTopics }, (_, i) => `bench.poll.t${String(i).padStart(4, '0')}`);
  const data = new Uint8Array(1024);
  for (let i = 0; i < topics.length; i += 16) {
    await Promise.all(
      topics.slice(i, i + 16).map(async (t) => {
        await pub.createTopic({ name: t, owner: 'bench' });
        await pub.publish(t, { data });
      }),
    );
  }
  pub.close();
  await publishProc.stop();

  const consumeProc = await startConsume(q);
  const loaders = await Promise.all(Array.from({ length: LOADERS }, (_, i) => startWorker(`load-${i}`)));
  const bareProc = await startWorker('bare');
  const rows: PollCostRow[] = [];
  try {
    // Wait for the cache to hold every topic.
    for (;;) {
      const h = (await (await fetch(`${consumeProc.httpUrl}/healthz`)).json()) as { topics: number };
      if (h.topics >= maxTopics) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const identity = { application: 'bench', cluster: 'bench', region: 'region-a', instance: 'bench-poll' };
    const bodyFor = (n: number): { rest: unknown; grpc: PbPollRequest } => {
      const subs = topics.slice(0, n).map((topic) => ({ topic, knownVersion: 1, appliedVersion: 1 }));
      return {
        rest: { identity, subscriptions: subs, waitMs: 0 },
        grpc: { identity: { ...identity, attributes: {} }, subscriptions: subs.map((s) => ({ ...s, knownVersion: '1', appliedVersion: '1' })), waitMs: 0 },
      };
    };
    // The service's real no-change answers, which the bare servers send back verbatim.
    const sample = bodyFor(sizes.pollTopics[0] as number);
    const restRes = await fetch(`${consumeProc.httpUrl}/v1/poll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(sample.rest) });
    const restReply = await restRes.text();
    if (restRes.status !== 200 || JSON.parse(restReply).updates.length !== 0) throw new Error(`poll cost: expected a no-change answer, got ${restRes.status} ${restReply.slice(0, 300)}`);
    const Ctor = loadQuireProto().quire.v1.ConsumeService;
    const client: ConsumeServiceClient = new Ctor(consumeProc.grpcAddress, grpc.credentials.createInsecure());
    const grpcReply = await new Promise<unknown>((resolve, reject) => client.Poll(sample.grpc, (err, res) => (err ? reject(err) : resolve(res))));
    client.close();
    const grpcReplyBytes = Ctor.service.Poll.responseSerialize(grpcReply as never).length;
    const bareRest = await bareProc.call<{ url: string }>({ op: 'bareRest', reply: restReply });
    const bareGrpc = await bareProc.call<{ address: string }>({ op: 'bareGrpc', reply: grpcReply });

    // BENCH_POLL_TRANSPORTS=rest (or grpc), BENCH_POLL_TOPICS=10, BENCH_POLL_INFLIGHT=64,256:
    // some rows only, for quicker A/B runs (and a profile of one row).
    const pick = (name: string): string[] | undefined => process.env[name]?.split(',').map((t) => t.trim());
    const only = pick('BENCH_POLL_TRANSPORTS');
    const topicsOnly = pick('BENCH_POLL_TOPICS');
    const inflightOnly = pick('BENCH_POLL_INFLIGHT');
    for (const transport of (['rest', 'grpc'] as const).filter((t) => only === undefined || only.includes(t))) {
      for (const n of sizes.pollTopics.filter((x) => topicsOnly === undefined || topicsOnly.includes(String(x)))) {
        const body = bodyFor(n)[transport];
        for (const inflight of sizes.inflight.filter((x) => inflightOnly === undefined || inflightOnly.includes(String(x)))) {
          const qs: Array<Awaited<ReturnType<typeof load>>> = [];
          const bs: Array<Awaited<ReturnType<typeof load>>> = [];
          for (let rep = 1; rep <= sizes.reps; rep++) {
            const quireTarget = transport === 'rest' ? `${consumeProc.httpUrl}/v1/poll` : consumeProc.grpcAddress;
            const bareTarget = transport === 'rest' ? bareRest.url : bareGrpc.address;
            // Alternate which goes first.
            if (rep % 2 === 1) {
              qs.push(await load(loaders, transport, quireTarget, body, inflight, sizes.pollSeconds));
              bs.push(await load(loaders, transport, bareTarget, body, inflight, sizes.pollSeconds));
            } else {
              bs.push(await load(loaders, transport, bareTarget, body, inflight, sizes.pollSeconds));
              qs.push(await load(loaders, transport, quireTarget, body, inflight, sizes.pollSeconds));
            }
          }
          const pack = (xs: typeof qs): PollCostRow['quire'] => ({
            rps: spread(xs.map((x) => x.rps)),
            p50: spread(xs.map((x) => x.p50)),
            p99: spread(xs.map((x) => x.p99)),
            errors: xs.reduce((a, x) => a + x.errors, 0),
          });
          const r: PollCostRow = {
            transport,
            topics: n,
            inflight,
            quire: pack(qs),
            bare: pack(bs),
            ratio: ratioSpread(
              qs.map((x) => x.rps),
              bs.map((x) => x.rps),
            ),
          };
          rows.push(r);
          ctx.progress(`poll cost ${transport} ${n} topics ${inflight} in flight: quire ${Math.round(r.quire.rps.median)}/s, bare ${Math.round(r.bare.rps.median)}/s (×${r.ratio.median.toFixed(2)})`);
        }
      }
    }
    return { loadProcesses: LOADERS, seconds: sizes.pollSeconds, replyBytes: { rest: Buffer.byteLength(restReply), grpc: grpcReplyBytes }, rows };
  } finally {
    await Promise.all([...loaders, bareProc].map((w) => w.stop()));
    await consumeProc.stop();
    await dropQuireEnv(ctx.servers, q);
  }
}
