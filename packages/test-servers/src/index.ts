// Real servers for Quire's integration tests: Apache Cassandra 5.0 and two s3proxy "regions",
// installed and started by the shell scripts in ../bin (cached under <repo>/.cache/servers).
// Everything fails loudly: a server that cannot be installed or started throws, with the log tail.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CassandraInfo {
  /** Hosts only (no port): pass `port` as `protocolOptions.port` to cassandra-driver. */
  contactPoints: string[];
  localDataCenter: string;
  port: number;
}

export interface CassandraServer extends CassandraInfo {
  /** Stops the node only if this call started it (a no-op for a reused or external server). */
  stop(): Promise<void>;
}

export interface S3Region {
  name: string;
  /** e.g. http://127.0.0.1:18081 — use path-style addressing (`forcePathStyle: true`). */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3Regions {
  regions: S3Region[];
  /** Stops only the instances this call started. */
  stop(): Promise<void>;
}

/** The serializable description the vitest global setup provides as `quireServers`. */
export interface QuireServers {
  cassandra: CassandraInfo;
  s3: { regions: S3Region[] };
}

const BIN_DIR = fileURLToPath(new URL('../bin/', import.meta.url));
export const CASSANDRA_SCRIPT = join(BIN_DIR, 'cassandra.sh');
export const S3PROXY_SCRIPT = join(BIN_DIR, 's3proxy.sh');

export const DEFAULT_S3_ACCESS_KEY = 'quire-test';
export const DEFAULT_S3_SECRET_KEY = 'quire-test-secret';
/** Default s3proxy instances (name -> loopback port). */
export const DEFAULT_S3_REGIONS: ReadonlyArray<{ name: string; port: number }> = [
  { name: 'region-a', port: 18081 },
  { name: 'region-b', port: 18082 },
];

type StartResult = 'started' | 'reused';

/**
 * Runs one of the bin scripts. stdout is inherited (progress shows); stderr is echoed and its
 * tail kept, so a failure throws an Error carrying the script's last lines (which include the
 * server log tail when a start fails).
 */
async function runScript(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<void> {
  const tail: string[] = [];
  let tailLen = 0;
  const code = await new Promise<number | string>((resolve, reject) => {
    const child = spawn('bash', [script, ...args], {
      stdio: ['ignore', 'inherit', 'pipe'],
      env: { ...process.env, ...env },
    });
    child.stderr.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      const s = chunk.toString('utf8');
      tail.push(s);
      tailLen += s.length;
      while (tailLen > 16_000 && tail.length > 1) tailLen -= tail.shift()!.length;
    });
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? signal ?? 'unknown'));
  });
  if (code !== 0) {
    throw new Error(
      `${script} ${args.join(' ')} failed (exit ${String(code)}):\n${tail.join('').slice(-12_000)}`,
    );
  }
}

/** Runs `s3proxy.sh <args>` with extra environment (an instance of a test's own: see cassandra-node.ts). */
export function runS3ProxyScript(args: string[], env: Record<string, string> = {}): Promise<void> {
  return runScript(S3PROXY_SCRIPT, args, env);
}

/** Runs `cassandra.sh <args>` with extra environment (a node of a test's own: see cassandra-node.ts). */
export function runCassandraScript(args: string[], env: Record<string, string> = {}): Promise<void> {
  return runScript(CASSANDRA_SCRIPT, args, env);
}

/** Runs a `start` and reports whether it started the server or found it already running. */
async function runStart(script: string, args: string[], env: Record<string, string> = {}): Promise<StartResult> {
  const resultFile = join(tmpdir(), `quire-start-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await runScript(script, args, { ...env, QUIRE_RESULT_FILE: resultFile });
    const word = readFileSync(resultFile, 'utf8').trim();
    if (word !== 'started' && word !== 'reused') throw new Error(`${script} ${args.join(' ')}: unexpected result "${word}"`);
    return word;
  } finally {
    rmSync(resultFile, { force: true });
  }
}

/** Resolves when host:port answers a CQL OPTIONS request with SUPPORTED; rejects otherwise. */
export function probeCql(host: string, port: number, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buf = Buffer.alloc(0);
    const fail = (why: string): void => {
      socket.destroy();
      reject(new Error(`no CQL server answers on ${host}:${port}: ${why}`));
    };
    socket.setTimeout(timeoutMs, () => fail('timed out'));
    socket.on('error', (e) => fail(e.message));
    socket.on('connect', () => {
      // Protocol v4 frame header: version, flags, stream (2 bytes), opcode OPTIONS (0x05), length 0.
      socket.write(Buffer.from([0x04, 0, 0, 0, 0x05, 0, 0, 0, 0]));
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 9) return;
      socket.destroy();
      if (buf[0] === 0x84 && buf[4] === 0x06) resolve();
      else fail(`unexpected reply ${buf.subarray(0, 9).toString('hex')}`);
    });
  });
}

function parseHostPort(value: string, what: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value.trim());
  if (!m) throw new Error(`${what} must be host:port, got "${value}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

/**
 * A running Cassandra for tests. With QUIRE_TEST_CASSANDRA=host:port (and optionally
 * QUIRE_TEST_CASSANDRA_DC, default datacenter1) that server is used and `stop` does nothing;
 * otherwise `cassandra.sh install` + `start` (port from CASSANDRA_PORT, default 9042).
 */
export async function ensureCassandra(): Promise<CassandraServer> {
  const external = process.env['QUIRE_TEST_CASSANDRA'];
  if (external) {
    const { host, port } = parseHostPort(external, 'QUIRE_TEST_CASSANDRA');
    await probeCql(host, port);
    return {
      contactPoints: [host],
      localDataCenter: process.env['QUIRE_TEST_CASSANDRA_DC'] || 'datacenter1',
      port,
      stop: async () => {},
    };
  }
  const host = process.env['CASSANDRA_LISTEN'] || '127.0.0.1';
  const port = Number(process.env['CASSANDRA_PORT'] || 9042);
  const node = process.env['QUIRE_TEST_CASSANDRA_NODE'] || 'node1';
  await runScript(CASSANDRA_SCRIPT, ['install']);
  const result = await runStart(CASSANDRA_SCRIPT, ['start', node]);
  await probeCql(host, port);
  let stopped = false;
  return {
    contactPoints: [host],
    localDataCenter: process.env['CASSANDRA_DC'] || 'datacenter1',
    port,
    stop: async () => {
      if (result !== 'started' || stopped) return;
      stopped = true;
      await runScript(CASSANDRA_SCRIPT, ['stop', node]);
    },
  };
}

async function probeHttp(url: string): Promise<void> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
  } catch (e) {
    throw new Error(`no HTTP server answers at ${url}: ${(e as Error).message}`);
  }
}

/**
 * Two S3 endpoints, `region-a` and `region-b`. With QUIRE_TEST_S3=region-a=http://h:p,region-b=http://h:p
 * (credentials from QUIRE_TEST_S3_ACCESS_KEY / QUIRE_TEST_S3_SECRET_KEY) those are used and `stop`
 * does nothing; otherwise s3proxy instances on 127.0.0.1:18081 and :18082 are installed and started.
 */
export async function ensureS3Regions(): Promise<S3Regions> {
  const accessKeyId = process.env['QUIRE_TEST_S3_ACCESS_KEY'] || DEFAULT_S3_ACCESS_KEY;
  const secretAccessKey = process.env['QUIRE_TEST_S3_SECRET_KEY'] || DEFAULT_S3_SECRET_KEY;
  const external = process.env['QUIRE_TEST_S3'];
  if (external) {
    const regions: S3Region[] = external
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((entry) => {
        const eq = entry.indexOf('=');
        if (eq <= 0) throw new Error(`QUIRE_TEST_S3 entries must be name=http://host:port, got "${entry}"`);
        const endpoint = entry.slice(eq + 1).replace(/\/+$/, '');
        if (!/^https?:\/\//.test(endpoint)) throw new Error(`QUIRE_TEST_S3: bad endpoint "${endpoint}"`);
        return { name: entry.slice(0, eq), endpoint, accessKeyId, secretAccessKey };
      });
    for (const want of DEFAULT_S3_REGIONS) {
      if (!regions.some((r) => r.name === want.name)) throw new Error(`QUIRE_TEST_S3 lacks ${want.name}`);
    }
    await Promise.all(regions.map((r) => probeHttp(r.endpoint)));
    return { regions, stop: async () => {} };
  }
  await runScript(S3PROXY_SCRIPT, ['install']);
  const started: string[] = [];
  const regions: S3Region[] = [];
  try {
    for (const { name, port } of DEFAULT_S3_REGIONS) {
      const result = await runStart(S3PROXY_SCRIPT, ['start', name, String(port)], {
        S3PROXY_IDENTITY: accessKeyId,
        S3PROXY_CREDENTIAL: secretAccessKey,
      });
      if (result === 'started') started.push(name);
      regions.push({ name, endpoint: `http://127.0.0.1:${port}`, accessKeyId, secretAccessKey });
    }
  } catch (e) {
    for (const name of started) await runScript(S3PROXY_SCRIPT, ['stop', name]).catch(() => {});
    throw e;
  }
  let stopped = false;
  return {
    regions,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const name of started) await runScript(S3PROXY_SCRIPT, ['stop', name]);
    },
  };
}

let counter = 0;
/** 13 lowercase base-36 characters: time, counter and randomness (unique across processes). */
function uniqueSuffix(): string {
  counter = (counter + 1) % 1296;
  const rand = randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-4);
  return Date.now().toString(36).slice(-7) + counter.toString(36).padStart(2, '0') + rand;
}

/**
 * A unique name valid both as a Cassandra keyspace and as an S3 bucket: lowercase letters and
 * digits only, starting with a letter, at most 48 characters.
 */
export function uniqueName(prefix = 'q'): string {
  let p = prefix.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (!/^[a-z]/.test(p)) p = `q${p}`;
  return p.slice(0, 48 - 13) + uniqueSuffix();
}

/** A unique Cassandra keyspace name: [a-z][a-z0-9_]*, at most 48 characters. */
export function uniqueKeyspace(prefix = 'ks'): string {
  let p = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  if (!/^[a-z]/.test(p)) p = `ks${p ? `_${p}` : ''}`;
  return `${p.slice(0, 48 - 14).replace(/_+$/, '')}_${uniqueSuffix()}`;
}

/** A unique S3 bucket name: 3–63 of [a-z0-9-], starting and ending with a letter or digit. */
export function uniqueBucket(prefix = 'bucket'): string {
  let p = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '');
  if (!p || p.startsWith('xn-') || p.startsWith('sthree-')) p = `q${p ? `-${p}` : ''}`;
  return `${p.slice(0, 63 - 14).replace(/-+$/, '')}-${uniqueSuffix()}`;
}

/** A test's own place on the shared servers, and the environment a Quire service process needs to use it. */
export interface QuireTestStores {
  /** Its own Cassandra keyspace (created by the services' migrations, replication factor 1). */
  keyspace: string;
  /** Each S3 region with its own bucket (created on first use). */
  regions: (S3Region & { bucket: string })[];
  /** QUIRE_METADATA_STORE=cassandra, the QUIRE_CASSANDRA_* variables and QUIRE_S3_REGIONS. */
  env: Record<string, string>;
}

/** A unique keyspace and one unique bucket per region, named after `name`, for services started as processes. */
export function quireTestStores(servers: QuireServers, name: string): QuireTestStores {
  const keyspace = uniqueKeyspace(name);
  const regions = servers.s3.regions.map((r) => ({ ...r, bucket: uniqueBucket(`${name}-${r.name}`) }));
  return { keyspace, regions, env: quireStoreEnv({ cassandra: servers.cassandra, keyspace, replicationFactor: 1, regions }) };
}

/** QUIRE_METADATA_STORE=cassandra, the QUIRE_CASSANDRA_* variables and QUIRE_S3_REGIONS for a service process. */
export function quireStoreEnv(d: { cassandra: CassandraInfo; keyspace: string; replicationFactor: number; regions: readonly (S3Region & { bucket: string })[] }): Record<string, string> {
  return {
    QUIRE_METADATA_STORE: 'cassandra',
    QUIRE_CASSANDRA_CONTACT_POINTS: d.cassandra.contactPoints.join(','),
    QUIRE_CASSANDRA_PORT: String(d.cassandra.port),
    QUIRE_CASSANDRA_DC: d.cassandra.localDataCenter,
    QUIRE_CASSANDRA_KEYSPACE: d.keyspace,
    QUIRE_CASSANDRA_REPLICATION_FACTOR: String(d.replicationFactor),
    QUIRE_S3_REGIONS: JSON.stringify(d.regions),
  };
}

export { buildQuireApps, startQuireProcess } from './processes.ts';
export { cassandraNode, cassandraRing, freePort, s3proxyInstance, waitForRing } from './cassandra-node.ts';
export type { CassandraNode, CassandraNodeOptions, S3ProxyInstance } from './cassandra-node.ts';
export type { QuireProcess, StartOptions } from './processes.ts';
export { storeBackends } from './backends.ts';
export type { StoreBackend, StoreBackendConfig } from './backends.ts';
export { dropKeyspace } from './keyspaces.ts';
