// A benchmark worker process: load generators, subscribers (Quire SDK consumers, etcd
// watchers), bare reference servers and large-payload clients, driven over IPC by the
// harness (env.ts `startWorker`). Every timestamp is `process.hrtime.bigint()`
// (CLOCK_MONOTONIC, one clock for every process on the machine).
import { subscribe } from 'node:diagnostics_channel';
import { createHash } from 'node:crypto';
import { appendFileSync, createReadStream, createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import http from 'node:http';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as grpc from '@grpc/grpc-js';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Etcd3 } from 'etcd3';
import Fastify, { type FastifyInstance } from 'fastify';
import { createConsumer, createDirectUploader, createPublisher, type Consumer } from '@quire/client';
import { loadQuireProto, type ConsumeServiceClient, type PbPollRequest, type PbPollResponseOutput } from '@quire/proto';

export interface S3Target {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export type WorkerRequest =
  | {
      op: 'quireConsumers';
      endpoint: string;
      topic: string;
      n: number;
      /** Long-poll hold (ms) or, with `pollIntervalMs`, periodic polling. */
      longPollWaitMs?: number;
      pollIntervalMs?: number;
      s3?: Record<string, S3Target & { forcePathStyle: boolean }>;
    }
  | { op: 'etcdWatchers'; endpoint: string; key: string; n: number }
  | { op: 'waitVersion'; version: number; timeoutMs: number }
  | { op: 'closeSubscribers' }
  | { op: 'pollLoad'; kind: 'rest' | 'grpc'; target: string; body: unknown; inflight: number; channels: number; durationMs: number; warmupMs: number }
  | { op: 'bareRest'; reply: string }
  | { op: 'bareGrpc'; reply: unknown }
  | { op: 'bareLongPoll'; reply?: string }
  | { op: 'heldPolls'; url: string; body: string; n: number }
  | { op: 'waitAnswered'; timeoutMs: number }
  | { op: 'sdkPublish'; endpoint: string; topic: string; file: string; region: string }
  | { op: 'sdkDirect'; endpoint: string; topic: string; file: string; region: string; s3: Record<string, S3Target & { forcePathStyle: boolean }> }
  | { op: 'sdkDownload'; endpoint: string; topic: string; version: number; region: string; s3: Record<string, S3Target & { forcePathStyle: boolean }> }
  | { op: 'sdkDownloadTo'; endpoint: string; topic: string; version: number; region: string; s3: Record<string, S3Target & { forcePathStyle: boolean }>; path: string }
  | { op: 'rawUpload'; s3: S3Target; bucket: string; key: string; file: string }
  | { op: 'rawGet'; s3: S3Target; bucket: string; key: string }
  | { op: 'rawGetToFile'; s3: S3Target; bucket: string; key: string; path: string };

export interface WorkerReply {
  id: number;
  result?: unknown;
  error?: string;
}

const nowNs = (): number => Number(process.hrtime.bigint());

// ---------------------------------------------------------------- subscribers

/** Arrival time (ns) of each version, per subscriber. */
let arrivals: Array<Map<number, number>> = [];
/**
 * Per version: when this process's SDK consumers first / last got a poll answer carrying it,
 * as decoded, before the SDK's own work (the SDK's `quire.client.pollAnswer` channel).
 */
let received = new Map<number, { first: number; last: number }>();
/**
 * `BENCH_WORKER_CPU_DIR`: each waitVersion appends this process's CPU time (ms, user +
 * system) from the version's first poll answer to the reply (`answersCpuMs`: the SDK's
 * work on the answers, plus up to one 20 ms check), and since the previous reply
 * (`cycleCpuMs`: also the re-polls and the health checks in between) to
 * `<dir>/<name>-<pid>.cpu.jsonl`. CPU time, unlike a profile's sample times, does not
 * count the time the process waited for a core on a loaded machine.
 */
const cpuDir = process.env['BENCH_WORKER_CPU_DIR'];
if (cpuDir !== undefined) mkdirSync(cpuDir, { recursive: true });
const cpuAtFirst = new Map<number, NodeJS.CpuUsage>();
let cpuAtReply = process.cpuUsage();
subscribe('quire.client.pollAnswer', (m) => {
  const t = nowNs();
  for (const u of (m as PbPollResponseOutput).updates) {
    const v = Number(u.version?.version);
    const r = received.get(v);
    if (r === undefined && cpuDir !== undefined) cpuAtFirst.set(v, process.cpuUsage());
    if (r === undefined) received.set(v, { first: t, last: t });
    else r.last = t;
  }
});
let closers: Array<() => Promise<void> | void> = [];

async function quireConsumers(req: Extract<WorkerRequest, { op: 'quireConsumers' }>): Promise<{ ready: number }> {
  const consumers: Consumer[] = [];
  for (let i = 0; i < req.n; i++) {
    const seen = new Map<number, number>();
    arrivals.push(seen);
    const c = createConsumer({
      endpoints: [req.endpoint],
      identity: { application: 'bench', cluster: 'bench', region: 'region-a', instance: `bench-${process.pid}-${i}` },
      ...(req.longPollWaitMs !== undefined ? { longPoll: { waitMs: req.longPollWaitMs } } : { pollIntervalMs: req.pollIntervalMs ?? 30_000 }),
      ...(req.s3 ? { s3: req.s3 } : {}),
      // Each consumer its own TCP connection, as separate instances would have.
      channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    });
    c.subscribe(req.topic).on('update', (e) => {
      if (!seen.has(e.version)) seen.set(e.version, nowNs());
    });
    consumers.push(c);
    closers.push(() => c.close());
  }
  // Start them spread over a second (a fleet does not start in one tick) or, when polling, over
  // one interval (a fleet in steady state polls at every phase); then wait for the first poll.
  const spreadMs = req.longPollWaitMs !== undefined ? 1000 : (req.pollIntervalMs ?? 30_000);
  await Promise.all(
    consumers.map(async (c) => {
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * spreadMs)));
      c.start();
      await c.ready();
    }),
  );
  return { ready: consumers.length };
}

async function etcdWatchers(req: Extract<WorkerRequest, { op: 'etcdWatchers' }>): Promise<{ ready: number }> {
  await Promise.all(
    Array.from({ length: req.n }, async () => {
      const seen = new Map<number, number>();
      arrivals.push(seen);
      // Each watcher its own client and connection (see BASELINES.md).
      const client = new Etcd3({ hosts: req.endpoint, grpcOptions: { 'grpc.use_local_subchannel_pool': 1 } as never });
      const watcher = await client.watch().key(req.key).create();
      watcher.on('put', (kv) => {
        const t = nowNs();
        const version = Number(kv.value.subarray(0, 12).toString('utf8').trim());
        if (!seen.has(version)) seen.set(version, t);
      });
      closers.push(async () => {
        await watcher.cancel();
        client.close();
      });
    }),
  );
  return { ready: req.n };
}

async function waitVersion(req: Extract<WorkerRequest, { op: 'waitVersion' }>): Promise<{ ns: number[]; missing: number; received?: { first: number; last: number } }> {
  const end = Date.now() + req.timeoutMs;
  while (Date.now() < end && arrivals.some((m) => !m.has(req.version))) await new Promise((r) => setTimeout(r, 20));
  const ns = arrivals.map((m) => m.get(req.version)).filter((x): x is number => x !== undefined);
  const r = received.get(req.version);
  // Profiled (--profile-consume): note the window of this version's answers, so that
  // profile-top.mjs can sum only the samples taken while the answers were handled.
  const dir = process.env['BENCH_CPU_PROFILE_DIR'];
  if (dir !== undefined && ns.length > 0) {
    const from = Math.min(r?.first ?? Number.POSITIVE_INFINITY, ...ns);
    appendFileSync(join(dir, `${process.env['BENCH_PROFILE_NAME'] ?? 'worker'}-${process.pid}.windows.jsonl`), `${JSON.stringify({ version: req.version, from, to: Math.max(...ns) })}\n`);
  }
  if (cpuDir !== undefined) {
    const now = process.cpuUsage();
    const ms = (c: NodeJS.CpuUsage | undefined): number | null => (c === undefined ? null : (now.user - c.user + now.system - c.system) / 1000);
    appendFileSync(join(cpuDir, `${process.argv[2] ?? 'worker'}-${process.pid}.cpu.jsonl`), `${JSON.stringify({ version: req.version, n: arrivals.length, answersCpuMs: ms(cpuAtFirst.get(req.version)), cycleCpuMs: ms(cpuAtReply) })}\n`);
    cpuAtReply = now;
  }
  return { ns, missing: arrivals.length - ns.length, ...(r === undefined ? {} : { received: { ...r } }) };
}

async function closeSubscribers(): Promise<{ closed: number }> {
  const n = closers.length;
  await Promise.all(closers.map((c) => c()));
  closers = [];
  arrivals = [];
  received = new Map();
  return { closed: n };
}

// ---------------------------------------------------------------- poll load

/** Closed-loop load: `inflight` requests always outstanding for `durationMs` after a warm-up. */
async function pollLoad(req: Extract<WorkerRequest, { op: 'pollLoad' }>): Promise<{ count: number; errors: number; elapsedMs: number; latMs: number[] }> {
  let send: () => Promise<void>;
  let cleanup = (): void => {};
  if (req.kind === 'rest') {
    const body = JSON.stringify(req.body);
    const url = new URL(req.target);
    const agent = new http.Agent({ keepAlive: true, maxSockets: req.inflight });
    cleanup = () => agent.destroy();
    send = () =>
      new Promise<void>((resolve, reject) => {
        const r = http.request(
          { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            res.on('data', () => {});
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
          },
        );
        r.on('error', reject);
        r.end(body);
      });
  } else {
    const Ctor = loadQuireProto().quire.v1.ConsumeService;
    const clients: ConsumeServiceClient[] = Array.from({ length: Math.max(1, req.channels) }, () => new Ctor(req.target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
    cleanup = () => clients.forEach((c) => c.close());
    let rr = 0;
    send = () =>
      new Promise<void>((resolve, reject) => {
        const c = clients[rr++ % clients.length] as ConsumeServiceClient;
        c.Poll(req.body as PbPollRequest, (err) => (err ? reject(err) : resolve()));
      });
  }
  let stopAt = 0;
  let measuring = false;
  let count = 0;
  let errors = 0;
  const lat: number[] = [];
  const loop = async (): Promise<void> => {
    while (Date.now() < stopAt) {
      const t0 = nowNs();
      try {
        await send();
        if (measuring) {
          count++;
          if (lat.length < 200_000) lat.push((nowNs() - t0) / 1e6);
        }
      } catch {
        if (measuring) errors++;
      }
    }
  };
  stopAt = Date.now() + req.warmupMs + req.durationMs;
  const loops = Array.from({ length: req.inflight }, loop);
  await new Promise((r) => setTimeout(r, req.warmupMs));
  measuring = true;
  const t0 = nowNs();
  await Promise.all(loops);
  const elapsedMs = (nowNs() - t0) / 1e6;
  cleanup();
  return { count, errors, elapsedMs, latMs: lat };
}

// ---------------------------------------------------------------- bare servers

let servers: Array<() => Promise<void>> = [];

/** The physical limit for REST: fastify, JSON body parsed, a constant reply of the service's size. */
async function bareRest(req: Extract<WorkerRequest, { op: 'bareRest' }>): Promise<{ url: string }> {
  const app = Fastify({ logger: false });
  app.post('/v1/poll', async (_r, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(req.reply));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push(() => app.close());
  return { url: `${url}/v1/poll` };
}

/** The physical limit for gRPC: grpc-js serving the same Poll method with a constant answer. */
async function bareGrpc(req: Extract<WorkerRequest, { op: 'bareGrpc' }>): Promise<{ address: string }> {
  const server = new grpc.Server();
  const service = loadQuireProto().quire.v1.ConsumeService.service;
  const handlers = Object.fromEntries(
    Object.keys(service).map((m) => [m, m === 'Poll' ? (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, req.reply) : () => {}]),
  );
  server.addService(service, handlers as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  servers.push(() => new Promise<void>((r) => server.tryShutdown(() => r())));
  return { address: `127.0.0.1:${port}` };
}

/**
 * The physical limit for held long-polls (BASELINES.md): a bare fastify server holding every
 * POST /v1/poll until POST /fire, waiters kept in one Set and released in one pass, each
 * answered `reply` (by default an empty poll answer).
 */
async function bareLongPoll(req: Extract<WorkerRequest, { op: 'bareLongPoll' }>): Promise<{ url: string; fireUrl: string; heldUrl: string }> {
  const app: FastifyInstance = Fastify({ logger: false });
  const waiters = new Set<() => void>();
  const reply = req.reply ?? JSON.stringify({ updates: [], errors: [], nextPollMs: 0, stale: false });
  app.post('/v1/poll', (_r, res) => {
    const done = (): void => {
      waiters.delete(done);
      void res.header('content-type', 'application/json; charset=utf-8').send(reply);
    };
    waiters.add(done);
  });
  app.post('/fire', async () => {
    const all = [...waiters];
    for (const w of all) w();
    return { released: all.length };
  });
  app.get('/held', async () => ({ heldPolls: waiters.size }));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push(() => app.close());
  return { url: `${url}/v1/poll`, fireUrl: `${url}/fire`, heldUrl: `${url}/held` };
}

// ---------------------------------------------------------------- held long-polls

let answered: number[] = [];
let heldTotal = 0;
let heldErrors = 0;

/** `n` POSTs, each on its own connection, held by the server until something changes. */
async function heldPolls(req: Extract<WorkerRequest, { op: 'heldPolls' }>): Promise<{ sent: number }> {
  answered = [];
  heldTotal = req.n;
  heldErrors = 0;
  const url = new URL(req.url);
  const body = req.body;
  // A refused or reset connection (accept backlog full while the server is busy) is retried
  // a few times, as a real client would; only a request that keeps failing counts as an error.
  const send = (i: number, attempt: number): void => {
    const r = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: false,
        // Spread over 256 loopback source addresses: 10,000 connections per round, several
        // rounds a minute, exhaust one address's ephemeral ports (TIME_WAIT) otherwise.
        ...(url.hostname === '127.0.0.1' ? { localAddress: `127.0.${1 + ((i >> 6) % 4)}.${2 + (i % 64)}` } : {}),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          if (res.statusCode === 200) answered.push(nowNs());
          else heldErrors++;
        });
      },
    );
    r.on('error', () => {
      if (attempt < 5) setTimeout(() => send(i, attempt + 1), 100 * attempt);
      else heldErrors++;
    });
    r.end(body);
  };
  for (let i = 0; i < req.n; i++) {
    send(i, 1);
    // Let sockets open in batches rather than 10,000 SYNs at once.
    if (i % 100 === 99) await new Promise((r2) => setTimeout(r2, 20));
  }
  return { sent: req.n };
}

async function waitAnswered(req: Extract<WorkerRequest, { op: 'waitAnswered' }>): Promise<{ ns: number[]; errors: number; missing: number }> {
  const end = Date.now() + req.timeoutMs;
  while (Date.now() < end && answered.length + heldErrors < heldTotal) await new Promise((r) => setTimeout(r, 10));
  return { ns: [...answered], errors: heldErrors, missing: heldTotal - answered.length - heldErrors };
}

// ---------------------------------------------------------------- large payloads

function s3Client(t: S3Target): S3Client {
  return new S3Client({
    endpoint: t.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function sdkPublish(req: Extract<WorkerRequest, { op: 'sdkPublish' }>): Promise<{ ms: number; version: number }> {
  const pub = createPublisher({ endpoint: req.endpoint, actor: 'bench', regions: [req.region], timeoutMs: 600_000 });
  const t0 = nowNs();
  const v = await pub.publish(req.topic, { file: req.file });
  const ms = (nowNs() - t0) / 1e6;
  pub.close();
  return { ms, version: v.version };
}

async function sdkDownload(req: Extract<WorkerRequest, { op: 'sdkDownload' }>): Promise<{ ms: number; bytes: number }> {
  const c = createConsumer({ endpoints: [req.endpoint], identity: { application: 'bench', region: req.region }, s3: req.s3 });
  const t0 = nowNs();
  const bytes = await c.download(req.topic, req.version);
  const ms = (nowNs() - t0) / 1e6;
  await c.close();
  return { ms, bytes: bytes.byteLength };
}

/** `createDirectUploader`: straight to S3 (multipart), then CommitUploaded (the service reads it back once to verify). */
async function sdkDirect(req: Extract<WorkerRequest, { op: 'sdkDirect' }>): Promise<{ ms: number; version: number }> {
  const up = createDirectUploader({ endpoint: req.endpoint, actor: 'bench', s3: req.s3 });
  const t0 = nowNs();
  const v = await up.publish(req.topic, { file: req.file, regions: [req.region] });
  const ms = (nowNs() - t0) / 1e6;
  up.close();
  return { ms, version: v.version };
}

/** `consumer.downloadTo`: streamed into a verified file (fsynced, renamed), deleted afterwards. */
async function sdkDownloadTo(req: Extract<WorkerRequest, { op: 'sdkDownloadTo' }>): Promise<{ ms: number }> {
  const c = createConsumer({ endpoints: [req.endpoint], identity: { application: 'bench', region: req.region }, s3: req.s3 });
  const t0 = nowNs();
  await c.downloadTo(req.topic, req.version, req.path);
  const ms = (nowNs() - t0) / 1e6;
  await c.close();
  rmSync(req.path, { force: true });
  return { ms };
}

async function rawUpload(req: Extract<WorkerRequest, { op: 'rawUpload' }>): Promise<{ ms: number }> {
  const client = s3Client(req.s3);
  const t0 = nowNs();
  await new Upload({ client, params: { Bucket: req.bucket, Key: req.key, Body: createReadStream(req.file) }, partSize: 8 * 1024 * 1024, queueSize: 4 }).done();
  const ms = (nowNs() - t0) / 1e6;
  client.destroy();
  return { ms };
}

/**
 * Raw GetObject, streamed and hashed (the SDK verifies SHA-256 too); with `path`, the bytes go
 * on into that file (a Node write stream), fsynced, the disk work `downloadTo` does, then the
 * file is deleted; without, they are discarded.
 */
async function rawGet(req: Extract<WorkerRequest, { op: 'rawGet' | 'rawGetToFile' }>): Promise<{ ms: number; bytes: number }> {
  const client = s3Client(req.s3);
  const path = req.op === 'rawGetToFile' ? req.path : undefined;
  const t0 = nowNs();
  const res = await client.send(new GetObjectCommand({ Bucket: req.bucket, Key: req.key }));
  const hash = createHash('sha256');
  let bytes = 0;
  const take = (chunk: Buffer): void => {
    bytes += chunk.length;
    hash.update(chunk);
  };
  const body = res.Body as NodeJS.ReadableStream;
  if (path === undefined) {
    await pipeline(body, new Writable({ write: (chunk: Buffer, _e, cb) => (take(chunk), cb()) }));
  } else {
    await pipeline(body, new Transform({ transform: (chunk: Buffer, _e, cb) => (take(chunk), cb(null, chunk)) }), createWriteStream(path));
  }
  hash.digest();
  if (path !== undefined) {
    // fsync flushes the file's pages whichever descriptor asks.
    const fh = await open(path, 'r+');
    await fh.sync();
    await fh.close();
  }
  const ms = (nowNs() - t0) / 1e6;
  client.destroy();
  if (path !== undefined) rmSync(path, { force: true });
  return { ms, bytes };
}

/** The operation's result with the CPU time (ms, user + system) this process spent on it (module loading excluded). */
async function withCpu<T extends object>(op: () => Promise<T>): Promise<T & { cpuMs: number }> {
  const c0 = process.cpuUsage();
  const out = await op();
  const c = process.cpuUsage(c0);
  return { ...out, cpuMs: (c.user + c.system) / 1000 };
}

// ---------------------------------------------------------------- dispatch

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case 'quireConsumers':
      return quireConsumers(req);
    case 'etcdWatchers':
      return etcdWatchers(req);
    case 'waitVersion':
      return waitVersion(req);
    case 'closeSubscribers':
      return closeSubscribers();
    case 'pollLoad':
      return pollLoad(req);
    case 'bareRest':
      return bareRest(req);
    case 'bareGrpc':
      return bareGrpc(req);
    case 'bareLongPoll':
      return bareLongPoll(req);
    case 'heldPolls':
      return heldPolls(req);
    case 'waitAnswered':
      return waitAnswered(req);
    case 'sdkPublish':
      return withCpu(() => sdkPublish(req));
    case 'sdkDownload':
      return withCpu(() => sdkDownload(req));
    case 'sdkDirect':
      return withCpu(() => sdkDirect(req));
    case 'sdkDownloadTo':
      return withCpu(() => sdkDownloadTo(req));
    case 'rawUpload':
      return withCpu(() => rawUpload(req));
    case 'rawGet':
    case 'rawGetToFile':
      return withCpu(() => rawGet(req));
  }
}

if (process.send !== undefined) {
  process.on('message', (m: WorkerRequest & { id: number }) => {
    handle(m).then(
      (result) => process.send?.({ id: m.id, result } satisfies WorkerReply),
      (err: unknown) => process.send?.({ id: m.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WorkerReply),
    );
  });
  process.on('SIGTERM', () => {
    void Promise.allSettled([closeSubscribers(), ...servers.map((s) => s())]).then(() => process.exit(0));
    servers = [];
  });
}
