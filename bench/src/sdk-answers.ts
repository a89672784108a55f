// SDK CPU per long-poll answer, without Cassandra, S3 or the consume service: N SDK consumers
// (each its own connection and PollStream, as in the propagation benchmark) in this process
// against a bare grpc-js PollStream server in a child process that holds their polls and
// answers them all at once (optionally in slices, one per event-loop turn) with a 1 KiB
// inline version. Per round: this process's CPU time from the release to the last update
// handler, per answer, and the server's CPU time per answer written. Steadier than the
// propagation benchmark's worker CPU on a busy machine: nothing else runs in the window.
//
//   node --import tsx bench/src/sdk-answers.ts [--consumers 500] [--rounds 12] [--slice 0]
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { createConsumer, type Consumer } from '@quire/client';
import { loadQuireProto, type PbPollRequestOutput, type PbPollResponse } from '@quire/proto';

const TOPIC = 'bench.sdk-answers';
const payload = Buffer.alloc(1024, 7);
const sha256 = createHash('sha256').update(payload).digest('hex');

function answer(version: number): PbPollResponse {
  return {
    updates: [
      {
        topic: TOPIC,
        via: 'release',
        inlineData: payload,
        version: {
          topic: TOPIC,
          version: String(version),
          publishId: `pub-${version}`,
          createdAt: String(Date.now()),
          publisher: 'bench',
          metadata: { build: String(version) },
          contentType: 'application/octet-stream',
          size: String(payload.length),
          sha256,
          inline: { blobId: `blob-${version}` },
          deletedAt: '0',
          scopes: [],
        },
      },
    ],
    errors: [],
    nextPollMs: 0,
    stale: false,
  };
}

type ToServer = { op: 'release'; slice: number } | { op: 'held' } | { op: 'exit' };
type FromServer = { port: number } | { held: number } | { released: number; cpuUsPerAnswer?: number };

/** The child: a PollStream that answers a poll behind the current version at once and holds the others. */
function serve(): void {
  let version = 1;
  let held: Array<() => void> = [];
  const send = (m: FromServer): void => void process.send?.(m);
  const server = new grpc.Server();
  const handlers: Partial<Record<string, grpc.handleBidiStreamingCall<PbPollRequestOutput, PbPollResponse>>> = {
    PollStream: (call) => {
      call.on('data', (req: PbPollRequestOutput) => {
        const known = Number(req.subscriptions[0]?.knownVersion ?? 0);
        if (known < version || req.waitMs === 0) call.write(answer(version));
        else held.push(() => call.write(answer(version)));
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  };
  server.addService(loadQuireProto().quire.v1.ConsumeService.service, handlers as grpc.UntypedServiceImplementation);
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    send({ port });
  });
  process.on('message', (m: ToServer) => {
    if (m.op === 'held') send({ held: held.length });
    if (m.op === 'exit') server.tryShutdown(() => process.exit(0));
    if (m.op !== 'release') return;
    version++;
    const all = held;
    held = [];
    const size = m.slice > 0 ? m.slice : all.length;
    const cpu0 = process.cpuUsage();
    const slice = (from: number): void => {
      const end = Math.min(all.length, from + size);
      if (end < all.length) setImmediate(() => slice(end));
      for (let i = from; i < end; i++) (all[i] as () => void)();
    };
    slice(0);
    send({ released: all.length });
    // The server's CPU per answer: measured once its writes are long done (the clients do not re-poll for 750 ms).
    setTimeout(() => {
      const c = process.cpuUsage(cpu0);
      send({ released: all.length, cpuUsPerAnswer: (c.user + c.system) / all.length });
    }, 200);
  });
}

async function run(): Promise<void> {
  const { values } = parseArgs({ options: { consumers: { type: 'string', default: '500' }, rounds: { type: 'string', default: '12' }, slice: { type: 'string', default: '0' } } });
  const n = Number(values.consumers);
  const rounds = Number(values.rounds);
  const sliceSize = Number(values.slice);
  const child: ChildProcess = fork(process.argv[1] as string, ['--serve'], { execArgv: process.execArgv });
  // The child's messages in order (none lost while nobody waits).
  const inbox: FromServer[] = [];
  let waiting: ((m: FromServer) => void) | undefined;
  child.on('message', (m: FromServer) => {
    const w = waiting;
    waiting = undefined;
    if (w === undefined) inbox.push(m);
    else w(m);
  });
  const next = <T extends FromServer>(): Promise<T> => {
    const m = inbox.shift();
    if (m !== undefined) return Promise.resolve(m as T);
    return new Promise((resolve) => (waiting = (x) => resolve(x as T)));
  };
  const { port } = await next<{ port: number }>();
  let target = 0;
  let got = 0;
  let done: () => void = () => {};
  const consumers: Consumer[] = [];
  for (let i = 0; i < n; i++) {
    const c = createConsumer({
      endpoints: [`127.0.0.1:${port}`],
      identity: { application: 'bench', cluster: 'bench', region: 'region-a', instance: `bench-${i}` },
      longPoll: { waitMs: 60_000 },
      // Re-polls 750–2,250 ms after an update: none inside a round's window.
      rearmAfterUpdateMs: 1500,
      healthCheck: { intervalMs: 0 },
      channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    });
    c.subscribe(TOPIC).on('update', (e) => {
      if (e.version === target && ++got === n) done();
    });
    consumers.push(c);
  }
  await Promise.all(consumers.map((c) => c.ready()));
  const client: number[] = [];
  const server: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Every consumer's poll held again.
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.send({ op: 'held' } satisfies ToServer);
      if ((await next<{ held: number }>()).held === n) break;
    }
    target = r + 2;
    got = 0;
    const handled = new Promise<void>((resolve) => (done = resolve));
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    child.send({ op: 'release', slice: sliceSize } satisfies ToServer);
    await next();
    await handled;
    const c = process.cpuUsage(cpu0);
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const serverCpu = (await next<{ released: number; cpuUsPerAnswer: number }>()).cpuUsPerAnswer;
    client.push((c.user + c.system) / n);
    server.push(serverCpu);
    console.log(`round ${r + 1}: SDK ${((c.user + c.system) / n).toFixed(1)} µs CPU per answer, server ${serverCpu.toFixed(1)} µs, all handled in ${wallMs.toFixed(1)} ms`);
  }
  // The first two rounds warm up (JIT).
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  console.log(`median over rounds 3–${rounds}: SDK ${median(client.slice(2)).toFixed(1)} µs CPU per answer, server ${median(server.slice(2)).toFixed(1)} µs`);
  await Promise.all(consumers.map((c) => c.close()));
  child.send({ op: 'exit' } satisfies ToServer);
}

if (process.argv.includes('--serve')) serve();
else await run();
