// The environment a benchmark run needs: the real servers (Cassandra, two s3proxy regions,
// reused when QUIRE_TEST_* point at running ones, else installed and started, and stopped at
// the end), an etcd node of our own (Debian's etcd-server, apt-get installed when missing),
// Quire's services as real processes, and worker processes for the load generators.
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import cassandra from 'cassandra-driver';
import {
  buildQuireApps,
  ensureCassandra,
  ensureS3Regions,
  freePort,
  startQuireProcess,
  quireTestStores,
  type CassandraServer,
  type QuireProcess,
  type S3Regions,
} from '@quire/test-servers';
import type { StageEvent } from './stages.ts';
import type { WorkerReply, WorkerRequest } from './worker.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const TSX_LOADER = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/loader.mjs')).href;

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}


/** Resident set size and its peak (VmHWM) of a process, in MiB, from /proc. */
export function rssMiB(pid: number): { rss: number; peak: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? Number.NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** CPU time (user + system, ms) a process has used so far (/proc/<pid>/stat). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11], [12] = utime, stime (the 14th and 15th of the whole line) in clock ticks (100 Hz on Linux).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Nanoseconds on the system-wide monotonic clock (CLOCK_MONOTONIC: the same in every process). */
export const nowNs = (): number => Number(process.hrtime.bigint());

// ---------------------------------------------------------------- servers

export interface Servers {
  cassandra: CassandraServer;
  s3: S3Regions;
  stop(): Promise<void>;
}

export async function startServers(): Promise<Servers> {
  log('servers: Cassandra (QUIRE_TEST_CASSANDRA to reuse one) and two s3proxy regions (QUIRE_TEST_S3)');
  const cassandra = await ensureCassandra();
  let s3: S3Regions;
  try {
    s3 = await ensureS3Regions();
  } catch (e) {
    await cassandra.stop();
    throw e;
  }
  return {
    cassandra,
    s3,
    async stop() {
      await s3.stop();
      await cassandra.stop();
    },
  };
}

// ---------------------------------------------------------------- etcd

/** Installs Debian's etcd-server and etcd-client when /usr/bin/etcd is missing (idempotent). */
export function ensureEtcdInstalled(): string {
  const bin = '/usr/bin/etcd';
  if (existsSync(bin)) return bin;
  log('etcd: not installed, apt-get install etcd-server etcd-client');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'etcd-server', 'etcd-client'], { stdio: 'inherit', env });
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'etcd-server', 'etcd-client'], { stdio: 'inherit', env });
  }
  if (!existsSync(bin)) throw new Error('apt-get installed etcd-server but /usr/bin/etcd is still missing');
  return bin;
}

export interface Etcd {
  endpoint: string;
  version: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startEtcd(): Promise<Etcd> {
  const bin = ensureEtcdInstalled();
  const version = /etcd Version: (\S+)/.exec(execFileSync(bin, ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  const dir = mkdtempSync(join(tmpdir(), 'quire-bench-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${client}`;
  const child = spawn(
    bin,
    [
      '--name', 'bench',
      '--data-dir', dir,
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `bench=http://127.0.0.1:${peer}`,
      '--log-level', 'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let out = '';
  child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString('utf8')).slice(-8000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
    } catch {
      // not yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`etcd did not start:\n${out}`);
    }
    await sleep(200);
  }
  log(`etcd ${version} on ${endpoint}`);
  return {
    endpoint,
    version,
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- Quire services

export interface QuireEnv {
  env: Record<string, string>;
  keyspace: string;
  buckets: Record<string, string>;
  s3Options: Record<string, { endpoint: string; accessKeyId: string; secretAccessKey: string; forcePathStyle: boolean }>;
}

/** Service environment on its own keyspace and buckets. */
export function quireEnv(servers: Servers, prefix: string, extra: Record<string, string> = {}): QuireEnv {
  const stores = quireTestStores(servers, `bench-${prefix}`);
  return {
    keyspace: stores.keyspace,
    buckets: Object.fromEntries(stores.regions.map((r) => [r.name, r.bucket])),
    s3Options: Object.fromEntries(
      stores.regions.map((r) => [r.name, { endpoint: r.endpoint, accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey, forcePathStyle: true }]),
    ),
    env: {
      ...stores.env,
      QUIRE_LOG_LEVEL: 'warn',
      ...extra,
    },
  };
}

async function emptyAndDeleteBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key as string }));
    if (keys.length === 0) break;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/**
 * Drops the benchmark's keyspace and empties and deletes its buckets: the servers may be
 * shared, and every keyspace costs Cassandra heap for as long as it exists. Best effort.
 */
export async function dropQuireEnv(servers: Servers, q: QuireEnv): Promise<void> {
  const c = new cassandra.Client({ contactPoints: servers.cassandra.contactPoints, localDataCenter: servers.cassandra.localDataCenter, protocolOptions: { port: servers.cassandra.port } });
  try {
    await c.execute(`DROP KEYSPACE IF EXISTS ${q.keyspace}`);
  } catch (e) {
    log(`could not drop keyspace ${q.keyspace}: ${(e as Error).message}`);
  } finally {
    await c.shutdown().catch(() => {});
  }
  for (const r of servers.s3.regions) {
    const bucket = q.buckets[r.name];
    if (bucket === undefined) continue;
    const client = new S3Client({ endpoint: r.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } });
    await emptyAndDeleteBucket(client, bucket).catch((e: unknown) => {
      if ((e as { name?: string }).name !== 'NoSuchBucket') log(`could not delete bucket ${bucket}: ${(e as Error).message}`);
    });
    client.destroy();
  }
}

/**
 * `--services compiled|source`: the services run as production runs them, the compiled build
 * (`pnpm build`: apps/<app>/dist/main.js under plain node; the default), or from their TS
 * source through tsx (as the tests run them), to compare the two.
 */
export type ServicesFrom = 'compiled' | 'source';
let servicesFrom: ServicesFrom = 'compiled';
export function servicesAre(from: ServicesFrom): void {
  servicesFrom = from;
}

/** Build the services when they run compiled (once per run, ~1 s); returns how they run. */
export async function prepareServices(): Promise<string> {
  if (servicesFrom === 'source') return 'source (node --import tsx apps/<app>/src/main.ts and bench/src/worker.ts)';
  await buildQuireApps(['publish-service', 'consume-service', 'bench-worker']);
  return 'compiled (pnpm build: node apps/<app>/dist/main.js; the bench workers, with the SDK, node bench/dist/worker/worker.js)';
}

export async function startPublish(q: QuireEnv, extra: Record<string, string> = {}): Promise<QuireProcess> {
  const profile: Record<string, string> =
    consumeProfileDir === undefined
      ? {}
      : {
          NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import ${pathToFileURL(join(HERE, 'cpu-profile.mjs')).href}`.trim(),
          BENCH_CPU_PROFILE_DIR: consumeProfileDir,
          BENCH_PROFILE_NAME: 'publish',
        };
  return startQuireProcess('publish-service', { ...q.env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0', ...profile, ...extra }, 120_000, { compiled: servicesFrom === 'compiled' });
}

/** `--profile-consume <dir>`: consume-service (and publish-service) processes write a V8 CPU profile there when they exit. */
let consumeProfileDir: string | undefined;
export function profileConsumeInto(dir: string | undefined): void {
  consumeProfileDir = dir;
}

/** The `--profile-consume` directory, if any (to write time windows next to the profiles). */
export function consumeProfileDirectory(): string | undefined {
  return consumeProfileDir;
}

/** `--memory-consume <dir>`: consume-service processes write a memory breakdown there on SIGUSR2 (memory-report.mjs). */
let consumeMemoryDir: string | undefined;
export function memoryConsumeInto(dir: string | undefined): void {
  consumeMemoryDir = dir;
}

/**
 * With `--memory-consume`: ask the consume process for its memory breakdown (SIGUSR2) and
 * return it (undefined without the option, or when no report came within 3 min).
 */
export async function consumeMemoryReport(pid: number): Promise<unknown> {
  if (consumeMemoryDir === undefined) return undefined;
  const dir = consumeMemoryDir;
  const existing = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (const until = Date.now() + 180_000; Date.now() < until; await sleep(200)) {
    const file = readdirSync(dir).find((f) => f.startsWith(`consume-${pid}-`) && f.endsWith('.json') && !existing.has(f));
    if (file !== undefined) return JSON.parse(readFileSync(join(dir, file), 'utf8')) as unknown;
  }
  return undefined;
}

/** `--consume-node-options <flags>`: extra Node/V8 flags for consume-service processes (e.g. heap settings). */
let consumeNodeOptions: string | undefined;
export function consumeNodeOptionsAre(flags: string | undefined): void {
  consumeNodeOptions = flags;
}

/**
 * A consume-service process. `stageTraceFile`: preload `stage-trace.mjs`, which writes the
 * service's propagation stage markers (hint received, topic reloaded, held polls answered)
 * with monotonic timestamps to that file (see `readStageTrace`). `--profile-consume`,
 * `--memory-consume` and `--consume-node-options` apply to every consume process.
 */
export async function startConsume(q: QuireEnv, extra: Record<string, string> = {}, options: { stageTraceFile?: string } = {}): Promise<QuireProcess> {
  const imports: string[] = [];
  const env: Record<string, string> = {};
  if (consumeProfileDir !== undefined) {
    imports.push(pathToFileURL(join(HERE, 'cpu-profile.mjs')).href);
    env['BENCH_CPU_PROFILE_DIR'] = consumeProfileDir;
  }
  if (consumeMemoryDir !== undefined) {
    imports.push(pathToFileURL(join(HERE, 'memory-report.mjs')).href);
    env['BENCH_MEMORY_DIR'] = consumeMemoryDir;
  }
  if (options.stageTraceFile !== undefined) {
    imports.push(pathToFileURL(join(HERE, 'stage-trace.mjs')).href);
    env['BENCH_STAGE_TRACE_FILE'] = options.stageTraceFile;
  }
  const flags = [...(consumeNodeOptions === undefined ? [] : [consumeNodeOptions]), ...imports.map((i) => `--import ${i}`)];
  if (flags.length > 0) env['NODE_OPTIONS'] = [process.env['NODE_OPTIONS'] ?? '', ...flags].join(' ').trim();
  return startQuireProcess('consume-service', { ...q.env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0', ...env, ...extra }, 180_000, { compiled: servicesFrom === 'compiled' });
}

/** The lines `stage-trace.mjs` wrote (none when the file is missing). */
export function readStageTrace(file: string): StageEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as StageEvent);
}

// ---------------------------------------------------------------- workers

export interface Worker {
  pid: number;
  /** Sends a request and resolves with the worker's answer to it. */
  call<T = unknown>(req: WorkerRequest): Promise<T>;
  rss(): { rss: number; peak: number };
  stop(): Promise<void>;
}

/** A load-generator / peer process (`worker.ts`), talking over IPC. */
export async function startWorker(name: string): Promise<Worker> {
  // With --profile-consume, workers are profiled too (same directory), to see the client side.
  const profile = consumeProfileDir === undefined ? [] : ['--import', pathToFileURL(join(HERE, 'cpu-profile.mjs')).href];
  // Compiled like the services (prepareServices built it): the SDK runs as a user's build runs.
  const compiled = servicesFrom === 'compiled';
  const child = fork(compiled ? join(HERE, '../dist/worker/worker.js') : join(HERE, 'worker.ts'), [name], {
    execArgv: [...profile, ...(compiled ? [] : ['--import', TSX_LOADER]), '--max-old-space-size=4096', '--disable-warning=NodeVersionSupportWarning'],
    env: consumeProfileDir === undefined ? process.env : { ...process.env, BENCH_CPU_PROFILE_DIR: consumeProfileDir, BENCH_PROFILE_NAME: name },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const exited = new Promise<void>((r) =>
    child.once('exit', (code, signal) => {
      for (const p of pending.values()) p.reject(new Error(`worker ${name} exited (${code ?? signal}) with a call pending`));
      pending.clear();
      r();
    }),
  );
  child.on('message', (m: WorkerReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error !== undefined) p.reject(new Error(`worker ${name}: ${m.error}`));
    else p.resolve(m.result);
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  return {
    pid: child.pid as number,
    call<T>(req: WorkerRequest): Promise<T> {
      const id = ++seq;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ ...req, id });
      });
    },
    rss: () => rssMiB(child.pid as number),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
