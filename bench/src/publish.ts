// 5. Publish throughput: inline 1 KiB publishes per second to one topic and spread over many
// topics, with one and two publish-service processes on the same Cassandra keyspace.
import { createPublisher, type Publisher } from '@quire/client';
import type { QuireProcess } from '@quire/test-servers';
import type { Context } from './context.ts';
import { nowNs, dropQuireEnv, quireEnv, startPublish } from './env.ts';
import { latency, spread, type Spread } from './stats.ts';

export interface PublishRow {
  processes: number;
  topics: number;
  /** Publishes/s, per repetition. */
  rate: Spread;
  p50: Spread;
  p99: Spread;
  errors: number;
}

export interface PublishResult {
  inflight: number;
  seconds: number;
  rows: PublishRow[];
}

async function drive(pubs: Publisher[], topics: string[], inflight: number, seconds: number): Promise<{ rate: number; p50: number; p99: number; errors: number }> {
  const data = new Uint8Array(1024);
  const end = Date.now() + seconds * 1000;
  let ok = 0;
  let errors = 0;
  let k = 0;
  const lat: number[] = [];
  const t0 = nowNs();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (Date.now() < end) {
        const i = k++;
        const s = nowNs();
        try {
          await (pubs[i % pubs.length] as Publisher).publish(topics[i % topics.length] as string, { data });
          ok++;
          lat.push((nowNs() - s) / 1e6);
        } catch {
          errors++;
        }
      }
    }),
  );
  const l = latency(lat);
  return { rate: ok / ((nowNs() - t0) / 1e9), p50: l.p50, p99: l.p99, errors };
}

export async function publishThroughput(ctx: Context): Promise<PublishResult> {
  const { sizes } = ctx;
  const q = quireEnv(ctx.servers, 'pub');
  const procs: QuireProcess[] = [];
  const pubs: Publisher[] = [];
  const rows: PublishRow[] = [];
  try {
    procs.push(await startPublish(q));
    procs.push(await startPublish(q));
    for (const p of procs) pubs.push(createPublisher({ endpoint: p.grpcAddress, actor: 'bench', regions: ['region-a'], timeoutMs: 30_000 }));
    const many = Array.from({ length: sizes.publishTopics }, (_, i) => `bench.pub.t${String(i).padStart(3, '0')}`);
    const one = ['bench.pub.single'];
    for (const t of [...one, ...many]) await (pubs[0] as Publisher).createTopic({ name: t, owner: 'bench' });
    const configs = [
      { processes: 1, topics: one },
      { processes: 1, topics: many },
      { processes: 2, topics: one },
      { processes: 2, topics: many },
    ];
    const acc = configs.map(() => [] as Array<Awaited<ReturnType<typeof drive>>>);
    for (let rep = 1; rep <= sizes.reps; rep++) {
      // Alternate the order of the configurations between repetitions.
      const order = rep % 2 === 1 ? configs.map((_, i) => i) : configs.map((_, i) => configs.length - 1 - i);
      for (const i of order) {
        const c = configs[i] as (typeof configs)[number];
        const r = await drive(pubs.slice(0, c.processes), c.topics, sizes.publishInflight, sizes.publishSeconds);
        acc[i]?.push(r);
        ctx.progress(`publish rep ${rep}/${sizes.reps}: ${c.processes} process(es), ${c.topics.length} topic(s): ${Math.round(r.rate)}/s, p99 ${r.p99.toFixed(0)} ms, ${r.errors} errors`);
      }
    }
    configs.forEach((c, i) => {
      const xs = acc[i] ?? [];
      rows.push({
        processes: c.processes,
        topics: c.topics.length,
        rate: spread(xs.map((x) => x.rate)),
        p50: spread(xs.map((x) => x.p50)),
        p99: spread(xs.map((x) => x.p99)),
        errors: xs.reduce((a, x) => a + x.errors, 0),
      });
    });
    return { inflight: sizes.publishInflight, seconds: sizes.publishSeconds, rows };
  } finally {
    for (const p of pubs) p.close();
    await Promise.all(procs.map((p) => p.stop()));
    await dropQuireEnv(ctx.servers, q);
  }
}
