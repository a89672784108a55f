// 4. Scale: many topics × versions in Cassandra (consume-service cold start, full refresh
// time, RSS), and many held long-polls on one consume process (RSS, time to answer all
// after a publish), side by side with a bare fastify long-poll server holding as many.
import { createHash, randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublisher } from '@quire/client';
import { scopeKey, type MetadataStore } from '@quire/core';
import { createCassandraMetadataStore } from '@quire/metadata-store';
import cassandra from 'cassandra-driver';
import type { QuireProcess } from '@quire/test-servers';
import type { Context } from './context.ts';
import { consumeMemoryReport, consumeProfileDirectory, cpuMs, nowNs, dropQuireEnv, quireEnv, rssMiB, sleep, startConsume, startPublish, startWorker, type Worker } from './env.ts';
import { ratioSpread, spread, type Spread } from './stats.ts';

export interface ScaleResult {
  topics: number;
  versionsPerTopic: number;
  seed: { seconds: number; publishesPerSecond: number };
  /** From spawn to listening, and to the first full refresh holding every topic (ms). */
  startToListening: Spread;
  coldStart: Spread;
  /** Duration of one full refresh of every topic (ms), the refresh period subtracted. */
  fullRefresh: Spread;
  /** RSS (MiB) of the consume process with every topic loaded. */
  rssLoaded: Spread;
  held: {
    polls: number;
    quire: HeldSide;
    bare: HeldSide;
    /** quire all-answered / bare all-answered, per repetition. */
    ratio: Spread;
    /** The same, release pass only (last answer − first answer). */
    releaseRatio: Spread;
    /** Bytes of each answer, Quire's and the bare server's alike (absent in results from before the bare server answered the same bytes). */
    answerBytes?: number;
    /** Why fewer repetitions than asked completed, if so. */
    error?: string;
  };
}

/** One server's figures over the held-poll repetitions (each on a fresh process). */
export interface HeldSide {
  rssIdle: Spread;
  rssHeld: Spread;
  allAnsweredMs: Spread;
  firstAnsweredMs: Spread;
  missing: number;
  /**
   * CPU time (user + system, ms, 10 ms ticks) the server process used from the publish (Quire:
   * the hint, the topic's reload and the answers) or the /fire (bare) until every poll was
   * answered: less noisy than wall-clock time on a shared machine. Absent in older results.
   */
  releaseCpuMs?: Spread;
}

interface Health {
  topics: number;
  lastRefreshOkAt: number | null;
  heldPolls: number;
}

async function health(url: string): Promise<Health> {
  return (await (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) })).json()) as Health;
}

/** Tables holding a topic's own rows (partitioned by it), and the column naming it. */
const TOPIC_TABLES: Array<[table: string, column: string]> = [
  ['topics', 'name'],
  ['topic_names', 'name'],
  ['versions', 'topic'],
  ['publish_ids', 'topic'],
  ['inline_data', 'topic'],
  ['releases', 'topic'],
];

/**
 * Seeds `topics` × `versions`: the first topic through the Cassandra MetadataStore adapter
 * (the publish path's LWT commit, 1 KiB inline versions released globally), then its rows
 * copied for every other topic by plain CQL inserts with the name rewritten (one unlogged
 * batch per topic). Publishing 50,000 versions through the service or the LWT path took
 * longer than the rest of the run on a shared 2-core machine; what the consume service
 * reads back is the same rows either way.
 */
async function seed(ctx: Context, servers: Context['servers'], keyspace: string, topics: string[], versions: number): Promise<number> {
  const t0 = Date.now();
  const { cassandra: cs } = servers;
  const store: MetadataStore = createCassandraMetadataStore({ contactPoints: cs.contactPoints, localDataCenter: cs.localDataCenter, port: cs.port, keyspace });
  const template = topics[0] as string;
  const data = new Uint8Array(1024);
  const sha256 = createHash('sha256').update(data).digest('hex');
  try {
    const now = Date.now();
    await store.createTopic({ name: template, owner: 'bench', description: '', retention: {}, inlineThresholdBytes: 1024 * 1024, createdAt: now, updatedAt: now, revision: 1 });
    for (let v = 0; v < versions; v++) {
      const record = await store.commitVersion(
        { topic: template, publishId: randomUUID(), createdAt: Date.now(), publisher: 'bench', metadata: {}, contentType: 'application/octet-stream', size: data.length, sha256, pointer: { kind: 'inline', blobId: randomUUID() } },
        data,
      );
      await store.putRelease({ topic: template, version: record.version, scope: {}, scopeKey: scopeKey({}), releasedAt: Date.now(), releasedBy: 'bench' });
    }
  } finally {
    await store.close();
  }
  const client = new cassandra.Client({ contactPoints: cs.contactPoints, localDataCenter: cs.localDataCenter, protocolOptions: { port: cs.port }, keyspace });
  try {
    const rows: Array<{ table: string; cols: string[]; values: unknown[] }> = [];
    for (const [table, column] of TOPIC_TABLES) {
      const rs = await client.execute(`SELECT * FROM ${table} WHERE ${column} = ? ALLOW FILTERING`, [template], { prepare: true });
      for (const r of rs.rows) {
        const cols = r.keys();
        rows.push({ table, cols, values: cols.map((c) => r.get(c) as unknown) });
      }
    }
    const inserts = rows.map((r) => ({ query: `INSERT INTO ${r.table} (${r.cols.join(', ')}) VALUES (${r.cols.map(() => '?').join(', ')})`, values: r.values }));
    let next = 1;
    let lastShown = Date.now();
    const worker = async (): Promise<void> => {
      while (next < topics.length) {
        const name = topics[next++] as string;
        const queries = inserts.map((q) => ({ query: q.query, params: q.values.map((v) => (typeof v === 'string' ? v.split(template).join(name) : v)) }));
        // A loaded single node times writes out now and then: plain inserts are idempotent, retry.
        for (let attempt = 1; ; attempt++) {
          try {
            await client.batch(queries, { prepare: true, logged: false });
            break;
          } catch (e) {
            if (attempt >= 5) throw e;
            await sleep(200 * attempt);
          }
        }
        if (Date.now() - lastShown > 5000) {
          lastShown = Date.now();
          ctx.progress(`scale: seeded ${next}/${topics.length} topics (${Math.round(next / ((Date.now() - t0) / 1000))}/s)`);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, () => worker()));
  } finally {
    await client.shutdown();
  }
  return (Date.now() - t0) / 1000;
}

export async function scale(ctx: Context): Promise<ScaleResult> {
  const { sizes } = ctx;
  const q = quireEnv(ctx.servers, 'scale');
  const publishProc = await startPublish(q); // migrates the keyspace
  const pub = createPublisher({ endpoint: publishProc.grpcAddress, actor: 'bench', regions: ['region-a'], timeoutMs: 60_000 });
  const hot = 'bench.scale.hot';
  const topics = Array.from({ length: sizes.scaleTopics - 1 }, (_, i) => `bench.scale.t${String(i).padStart(5, '0')}`);
  ctx.progress(`scale: seeding ${sizes.scaleTopics} topics × ${sizes.scaleVersions} versions`);
  // The hot topic (published to later) is the template: only its rows are written by LWTs.
  const seedSeconds = await seed(ctx, ctx.servers, q.keyspace, [hot, ...topics], sizes.scaleVersions);
  const totalTopics = topics.length + 1;
  const refreshMs = 1000;
  const listening: number[] = [];
  const cold: number[] = [];
  const refresh: number[] = [];
  const rssLoaded: number[] = [];
  let consumeProc: QuireProcess | undefined;
  const workers: Worker[] = [];
  try {
    // Cold starts are long at full size: two are enough for a spread (each gives 2 full refreshes).
    for (let rep = 1; rep <= Math.min(2, sizes.reps); rep++) {
      const t0 = Date.now();
      const proc = await startConsume(q, { QUIRE_CACHE_REFRESH_MS: String(refreshMs) });
      listening.push(Date.now() - t0);
      try {
        let h = await health(proc.httpUrl);
        while (h.topics < totalTopics || h.lastRefreshOkAt === null) {
          await sleep(20);
          h = await health(proc.httpUrl);
        }
        cold.push(Date.now() - t0);
        // Successive full refreshes: each starts `refreshMs` after the previous one ended.
        const stamps = [h.lastRefreshOkAt];
        const until = Date.now() + 120_000;
        while (stamps.length < 3 && Date.now() < until) {
          await sleep(20);
          h = await health(proc.httpUrl);
          if (h.lastRefreshOkAt !== null && h.lastRefreshOkAt !== stamps.at(-1)) stamps.push(h.lastRefreshOkAt);
        }
        for (let i = 1; i < stamps.length; i++) refresh.push((stamps[i] as number) - (stamps[i - 1] as number) - refreshMs);
        rssLoaded.push(rssMiB(proc.child.pid as number).rss);
        const memory = await consumeMemoryReport(proc.child.pid as number);
        if (memory !== undefined) ctx.progress(`scale: consume memory with ${h.topics} topics: ${JSON.stringify(memory)}`);
        ctx.progress(`scale: cold start ${cold.at(-1)} ms (listening after ${listening.at(-1)} ms), full refresh ${refresh.slice(-2).join(', ')} ms, RSS ${rssLoaded.at(-1)?.toFixed(0)} MiB`);
      } finally {
        await proc.stop();
      }
    }

    // Held long-polls: a consume process with the default refresh period, woken by the
    // publish service's change hints as deployed (ADR 0009). Each repetition gets a fresh
    // consume process and a fresh bare server process (both sides alike), so neither carries
    // the memory of an earlier round's 10,000 closed connections into the next.
    const startHeldConsume = async (): Promise<QuireProcess> => {
      const proc = await startConsume(q, { QUIRE_PUBLISH_HINT_ENDPOINTS: publishProc.grpcAddress });
      consumeProc = proc;
      // Every topic loaded before the polls arrive.
      while ((await health(proc.httpUrl)).topics < totalTopics) await sleep(100);
      return proc;
    };
    const stopHeldConsume = async (): Promise<void> => {
      const proc = consumeProc;
      consumeProc = undefined;
      await proc?.stop();
    };
    let hotVersion = sizes.scaleVersions;
    // One client process holds all 10,000 (each on its own connection, spread over many
    // loopback source addresses: see worker.ts heldPolls).
    const clients = await Promise.all([startWorker('held-0')]);
    workers.push(...clients);
    // The bare server answers the very bytes a woken Quire poll gets (one update, its 1 KiB
    // inline, base64), as the poll-cost limit answers a constant of the same size.
    // Each fresh consume process answers this poll first, as a serving process would have
    // answered polls before a publish: its first answer compiles the route's response
    // validation (ajv), about 40 ms that would otherwise land in the release.
    const samplePoll = async (url: string): Promise<string> => {
      const sampleAnswer = await fetch(`${url}/v1/poll`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ identity: { application: 'bench', cluster: 'bench', region: 'region-a', instance: 'sample' }, subscriptions: [{ topic: hot, knownVersion: 0 }] }),
      });
      const text = await sampleAnswer.text();
      if (!sampleAnswer.ok || !text.includes('"inlineData"')) throw new Error(`scale: the sample poll of ${hot} answered ${sampleAnswer.status}: ${text.slice(0, 200)}`);
      return text;
    };
    let reply: string;
    {
      const sampleProc = await startHeldConsume();
      try {
        reply = await samplePoll(sampleProc.httpUrl);
      } finally {
        await stopHeldConsume();
      }
    }
    const heldAnswerBytes = Buffer.byteLength(reply);
    const n = sizes.heldPolls;
    const q1 = { rssIdle: [] as number[], rssHeld: [] as number[], all: [] as number[], first: [] as number[], cpu: [] as number[], missing: 0 };
    const b1 = { rssIdle: [] as number[], rssHeld: [] as number[], all: [] as number[], first: [] as number[], cpu: [] as number[], missing: 0 };
    const hold = async (url: string, body: string, held: () => Promise<number>): Promise<void> => {
      await Promise.all(clients.map((c, i) => c.call({ op: 'heldPolls', url, body, n: Math.floor(n / clients.length) + (i < n % clients.length ? 1 : 0) })));
      const until = Date.now() + 120_000;
      while ((await held()) < n) {
        const failed = (await Promise.all(clients.map((c) => c.call<{ errors: number }>({ op: 'waitAnswered', timeoutMs: 0 })))).reduce((a, r) => a + r.errors, 0);
        if (failed > 0 || Date.now() > until) throw new Error(`scale: only ${await held()} of ${n} long-polls held (${failed} failed to connect or were refused)`);
        await sleep(100);
      }
      await sleep(500);
    };
    const answered = async (t0: number, into: typeof q1, pid: number, cpu0: number): Promise<void> => {
      const parts = await Promise.all(clients.map((c) => c.call<{ ns: number[]; errors: number; missing: number }>({ op: 'waitAnswered', timeoutMs: 60_000 })));
      into.cpu.push(cpuMs(pid) - cpu0);
      const ns = parts.flatMap((p) => p.ns);
      into.all.push((Math.max(...ns) - t0) / 1e6);
      into.first.push((Math.min(...ns) - t0) / 1e6);
      // With --profile-consume: the release's window (publish or /fire to the last answer,
      // CLOCK_MONOTONIC ns as V8 stamps samples) for profile-top.mjs.
      const dir = consumeProfileDirectory();
      if (dir !== undefined) appendFileSync(join(dir, `${into === q1 ? 'consume' : 'bare-longpoll'}-${pid}.windows.jsonl`), `${JSON.stringify({ from: t0, to: Math.max(...ns) })}\n`);
      into.missing += parts.reduce((a, p) => a + p.missing + p.errors, 0);
    };
    const runQuire = async (): Promise<void> => {
      const proc = await startHeldConsume();
      try {
        const pid = proc.child.pid as number;
        const url = proc.httpUrl;
        await samplePoll(url);
        q1.rssIdle.push(rssMiB(pid).rss);
        const body = JSON.stringify({ identity: { application: 'bench', cluster: 'bench', region: 'region-a', instance: 'held' }, subscriptions: [{ topic: hot, knownVersion: hotVersion, appliedVersion: hotVersion }], waitMs: 60_000 });
        await hold(`${url}/v1/poll`, body, async () => (await health(url)).heldPolls);
        q1.rssHeld.push(rssMiB(pid).rss);
        const cpu0 = cpuMs(pid);
        const t0 = nowNs();
        hotVersion = (await pub.publish(hot, { data: new Uint8Array(1024) })).version;
        await answered(t0, q1, pid, cpu0);
      } finally {
        await stopHeldConsume();
      }
    };
    const runBare = async (): Promise<void> => {
      const bareProc = await startWorker('bare-longpoll');
      try {
        const bare = await bareProc.call<{ url: string; fireUrl: string; heldUrl: string }>({ op: 'bareLongPoll', reply });
        b1.rssIdle.push(bareProc.rss().rss);
        await hold(bare.url, '{}', async () => ((await (await fetch(bare.heldUrl)).json()) as { heldPolls: number }).heldPolls);
        b1.rssHeld.push(bareProc.rss().rss);
        const cpu0 = cpuMs(bareProc.pid);
        const t0 = nowNs();
        await fetch(bare.fireUrl, { method: 'POST' });
        await answered(t0, b1, bareProc.pid, cpu0);
      } finally {
        await bareProc.stop();
      }
    };
    let heldError: string | undefined;
    for (let rep = 1; rep <= sizes.reps; rep++) {
      const [qn, bn] = [q1.all.length, b1.all.length];
      try {
        if (rep % 2 === 1) {
          await runQuire();
          await sleep(1000);
          await runBare();
        } else {
          await runBare();
          await sleep(1000);
          await runQuire();
        }
      } catch (e) {
        // Keep the repetitions that completed (pairs only), say why the others are missing.
        heldError = `repetition ${rep}: ${(e as Error).message}`;
        for (const x of [q1, b1]) for (const k of ['rssIdle', 'rssHeld', 'all', 'first', 'cpu'] as const) x[k].length = Math.min(qn, bn);
        ctx.progress(`scale: held polls stopped at ${heldError}`);
        break;
      }
      await sleep(1000);
      ctx.progress(
        `scale: ${n} held polls rep ${rep}/${sizes.reps}: quire RSS ${q1.rssHeld.at(-1)?.toFixed(0)} MiB, all answered ${q1.all.at(-1)?.toFixed(0)} ms, CPU ${q1.cpu.at(-1)?.toFixed(0)} ms; bare RSS ${b1.rssHeld.at(-1)?.toFixed(0)} MiB, ${b1.all.at(-1)?.toFixed(0)} ms, CPU ${b1.cpu.at(-1)?.toFixed(0)} ms`,
      );
    }
    const pack = (x: typeof q1): HeldSide => ({
      rssIdle: spread(x.rssIdle),
      rssHeld: spread(x.rssHeld),
      allAnsweredMs: spread(x.all),
      firstAnsweredMs: spread(x.first),
      missing: x.missing,
      releaseCpuMs: spread(x.cpu),
    });
    return {
      topics: totalTopics,
      versionsPerTopic: sizes.scaleVersions,
      seed: { seconds: seedSeconds, publishesPerSecond: (totalTopics * sizes.scaleVersions) / seedSeconds },
      startToListening: spread(listening),
      coldStart: spread(cold),
      fullRefresh: spread(refresh),
      rssLoaded: spread(rssLoaded),
      held: {
        polls: n,
        quire: pack(q1),
        bare: pack(b1),
        ratio: ratioSpread(q1.all, b1.all),
        releaseRatio: ratioSpread(
          q1.all.map((a, i) => a - (q1.first[i] as number)),
          b1.all.map((a, i) => a - (b1.first[i] as number)),
        ),
        answerBytes: heldAnswerBytes,
        ...(heldError === undefined ? {} : { error: heldError }),
      },
    };
  } finally {
    pub.close();
    await Promise.all(workers.map((w) => w.stop()));
    await consumeProc?.stop();
    await publishProc.stop();
    await dropQuireEnv(ctx.servers, q);
  }
}
