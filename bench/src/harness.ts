// One benchmark run: start what is needed, run the selected benchmarks in order, and return
// one JSON-serialisable result (machine, versions, every figure with its spread).
import { execFileSync } from 'node:child_process';
import type { QuireServers } from '@quire/test-servers';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import cassandra from 'cassandra-driver';
import { capacityInputs, capacityModel, type CapacityResult } from './capacity.ts';
import { FULL, QUICK, type Context, type Sizes } from './context.ts';
import { log, prepareServices, startEtcd, startServers, type Etcd, type Servers } from './env.ts';
import { largePayloads, type LargeResult } from './large.ts';
import { pollCost, type PollCostResult } from './poll-cost.ts';
import { propagation, type PropagationResult } from './propagation.ts';
import { publishThroughput, type PublishResult } from './publish.ts';
import { scale, type ScaleResult } from './scale.ts';

export const BENCHMARKS = ['propagation', 'poll', 'large', 'scale', 'publish'] as const;
export type BenchmarkName = (typeof BENCHMARKS)[number];

/** The service and SDK settings the capacity model assumes (the defaults the benchmarks ran with). */
export const CAPACITY_SETTINGS = { refreshPeriodMs: 5000, changePollMs: 150, longPollWaitMs: 20_000, pollIntervalMs: 30_000 };

export interface RunOptions {
  quick: boolean;
  only: BenchmarkName[];
  /** Overrides of the sizes (the smoke test uses tiny ones). */
  sizes?: Partial<Sizes>;
  progress?: (msg: string) => void;
  /** Servers already running (the test suite's); neither started nor stopped here. */
  servers?: QuireServers;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  /** Other processes seen at the start (the machine may be shared). */
  otherProcesses: { node: number; java: number };
}

export interface BenchResults {
  schema: 'quire-bench/1';
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  sizes: Sizes;
  machine: Machine;
  versions: Record<string, string>;
  errors: Array<{ benchmark: BenchmarkName; error: string }>;
  /** How this file came to be, when not from one run (e.g. a benchmark re-run and merged). */
  notes?: string[];
  propagation?: PropagationResult;
  poll?: PollCostResult;
  large?: LargeResult;
  scale?: ScaleResult;
  publish?: PublishResult;
  capacity?: CapacityResult;
}

function otherProcesses(): { node: number; java: number } {
  try {
    const comms = execFileSync('ps', ['-e', '-o', 'comm='], { encoding: 'utf8' }).split('\n');
    return { node: comms.filter((c) => c.trim() === 'node').length - 1, java: comms.filter((c) => c.trim() === 'java').length };
  } catch {
    return { node: -1, java: -1 };
  }
}

function pkgVersion(name: string, from: string): string {
  try {
    const req = createRequire(from);
    return (JSON.parse(readFileSync(req.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function versions(servers: Servers, etcd: Etcd): Promise<Record<string, string>> {
  const out: Record<string, string> = { node: process.version, etcd: etcd.version };
  const here = import.meta.url;
  for (const p of ['@grpc/grpc-js', 'fastify', 'etcd3', '@aws-sdk/client-s3', '@aws-sdk/lib-storage', 'cassandra-driver']) out[p] = pkgVersion(p, here);
  const client = new cassandra.Client({ contactPoints: servers.cassandra.contactPoints, localDataCenter: servers.cassandra.localDataCenter, protocolOptions: { port: servers.cassandra.port } });
  try {
    const rs = await client.execute('SELECT release_version FROM system.local');
    out['cassandra'] = String(rs.first()?.['release_version'] ?? 'unknown');
  } catch (e) {
    out['cassandra'] = `unknown (${(e as Error).message})`;
  } finally {
    await client.shutdown();
  }
  try {
    const ps = execFileSync('ps', ['-e', '-o', 'args='], { encoding: 'utf8' });
    out['s3proxy'] = /s3proxy-(\d+\.\d+\.\d+)-jar/.exec(ps)?.[1] ?? 'unknown';
  } catch {
    out['s3proxy'] = 'unknown';
  }
  try {
    out['quire'] = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    out['quire'] = 'unknown';
  }
  return out;
}

export async function runBench(options: RunOptions): Promise<BenchResults> {
  const progress = options.progress ?? log;
  const sizes: Sizes = { ...(options.quick ? QUICK : FULL), ...options.sizes };
  const startedAt = new Date().toISOString();
  const machine: Machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg(),
    loadAverageAtEnd: [],
    otherProcesses: otherProcesses(),
  };
  const servers: Servers = options.servers ? { ...options.servers, cassandra: { ...options.servers.cassandra, stop: async () => {} }, s3: { ...options.servers.s3, stop: async () => {} }, stop: async () => {} } : await startServers();
  let etcd: Etcd | undefined;
  const results: BenchResults = { schema: 'quire-bench/1', startedAt, finishedAt: '', quick: options.quick, sizes, machine, versions: {}, errors: [] };
  try {
    etcd = await startEtcd();
    results.versions = await versions(servers, etcd);
    results.versions['services'] = await prepareServices();
    const ctx: Context = { servers, etcd, sizes, progress };
    const run = async <K extends BenchmarkName>(name: K, fn: (c: Context) => Promise<NonNullable<BenchResults[K extends 'poll' ? 'poll' : K]>>): Promise<void> => {
      if (!options.only.includes(name)) return;
      const t0 = Date.now();
      progress(`── ${name} ──`);
      try {
        (results as unknown as Record<string, unknown>)[name] = await fn(ctx);
        progress(`── ${name} done in ${Math.round((Date.now() - t0) / 1000)} s`);
      } catch (e) {
        const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
        progress(`── ${name} FAILED: ${error}`);
        results.errors.push({ benchmark: name, error });
      }
    };
    await run('propagation', propagation);
    await run('poll', pollCost);
    await run('large', largePayloads);
    await run('scale', scale);
    await run('publish', publishThroughput);
    const inputs = capacityInputs(results.poll, results.scale, CAPACITY_SETTINGS);
    if (inputs) results.capacity = capacityModel(inputs);
  } finally {
    await etcd?.stop();
    await servers.stop();
  }
  results.machine.loadAverageAtEnd = os.loadavg();
  results.finishedAt = new Date().toISOString();
  return results;
}
