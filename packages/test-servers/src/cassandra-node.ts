// Extra servers that a test owns (Cassandra nodes, s3proxy instances): started, stopped, frozen and wiped by that test
// (fault scenarios), never the shared node on 127.0.0.1:9042. Each node gets its own name
// (so its own directory under .cache/servers/cassandra-nodes/) and, unless told, free
// ports; `ring()` starts several nodes on 127.0.0.2, .3, ... that form one cluster.
import { readFileSync } from 'node:fs';
import cassandra from 'cassandra-driver';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CASSANDRA_SCRIPT, DEFAULT_S3_ACCESS_KEY, DEFAULT_S3_SECRET_KEY, probeCql, runCassandraScript, runS3ProxyScript, type S3Region } from './index.ts';

const SERVERS_DIR = process.env['QUIRE_SERVERS_DIR'] || fileURLToPath(new URL('../../../.cache/servers/', import.meta.url));

export interface CassandraNodeOptions {
  /** Node name (its directory); default `t<pid>-<n>`. */
  name?: string;
  /** Listen / rpc address (default 127.0.0.1). */
  listen?: string;
  /** CQL port (default: a free one). */
  port?: number;
  /** Storage (gossip) port (default: a free one). */
  storagePort?: number;
  /** JMX port on 127.0.0.1 (default: a free one). */
  jmxPort?: number;
  /** Seeds (default: itself). */
  seeds?: string;
  initialToken?: string;
  /** JVM heap (default 512M). */
  heap?: string;
  /** Cluster name (default `quire-<name>`, so it never joins another test's node). */
  cluster?: string;
}

export interface CassandraNode {
  name: string;
  listen: string;
  port: number;
  localDataCenter: string;
  /** Start (again: the data is kept) and wait for CQL. */
  start(): Promise<void>;
  /** SIGTERM, wait for the exit. */
  stop(): Promise<void>;
  /** SIGSTOP / SIGCONT the JVM: the node stops answering without closing its sockets. */
  freeze(): void;
  thaw(): void;
  /** Kill the node (it may be frozen) and delete its directory. */
  wipe(): Promise<void>;
}

let counter = 0;

/** A TCP port free on `host` now (and on every host of `alsoOn`). */
export async function freePort(host = '127.0.0.1', alsoOn: readonly string[] = []): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, host, () => {
        const a = s.address();
        const p = typeof a === 'object' && a !== null ? a.port : 0;
        s.close(() => resolve(p));
      });
    });
    const ok = await Promise.all(alsoOn.map((h) => canListen(h, port)));
    if (ok.every(Boolean)) return port;
  }
  throw new Error(`no port free on ${[host, ...alsoOn].join(', ')}`);
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** Describe (not start) a node: `start()` it. Free ports are picked now. */
export async function cassandraNode(options: CassandraNodeOptions = {}): Promise<CassandraNode> {
  const name = options.name ?? `t${process.pid}-${++counter}`;
  const listen = options.listen ?? '127.0.0.1';
  const port = options.port ?? (await freePort(listen));
  const storagePort = options.storagePort ?? (await freePort(listen));
  const jmxPort = options.jmxPort ?? (await freePort('127.0.0.1'));
  const env: Record<string, string> = {
    CASSANDRA_LISTEN: listen,
    CASSANDRA_SEEDS: options.seeds ?? listen,
    CASSANDRA_INITIAL_TOKEN: options.initialToken ?? '0',
    CASSANDRA_PORT: String(port),
    CASSANDRA_STORAGE_PORT: String(storagePort),
    CASSANDRA_JMX_PORT: String(jmxPort),
    CASSANDRA_CLUSTER: options.cluster ?? `quire-${name}`,
    MAX_HEAP_SIZE: options.heap ?? '512M',
  };
  const pidfile = join(SERVERS_DIR, 'cassandra-nodes', name, 'cassandra.pid');
  const pid = (): number | undefined => {
    try {
      const n = Number(readFileSync(pidfile, 'utf8').trim());
      return Number.isSafeInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const signal = (sig: NodeJS.Signals): void => {
    const p = pid();
    if (p === undefined) throw new Error(`cassandra node ${name} is not running`);
    process.kill(p, sig);
  };
  return {
    name,
    listen,
    port,
    localDataCenter: 'datacenter1',
    async start() {
      await runCassandraScript(['start', name], env);
      await probeCql(listen, port);
    },
    async stop() {
      await runCassandraScript(['stop', name], env);
    },
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    async wipe() {
      // Its data is deleted anyway: kill -9 instead of a graceful stop (seconds saved per node).
      const p = pid();
      if (p !== undefined) {
        try {
          process.kill(p, 'SIGKILL');
          const end = Date.now() + 10_000;
          while (Date.now() < end) {
            process.kill(p, 0);
            await new Promise((r) => setTimeout(r, 100));
          }
        } catch {
          // gone
        }
      }
      await runCassandraScript(['wipe', name], env);
    },
  };
}

/**
 * `n` nodes on 127.0.0.2 … 127.0.0.(n+1), one CQL port and one storage port for all (the
 * driver reaches every peer on the contact point's port), evenly spread tokens, the first
 * as seed. Started one after the other.
 */
export async function cassandraRing(n: number, options: { heap?: string; name?: string } = {}): Promise<CassandraNode[]> {
  const hosts = Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`);
  const [first, ...rest] = hosts as [string, ...string[]];
  const port = await freePort(first, rest);
  const storagePort = await freePort(first, rest);
  const base = options.name ?? `r${process.pid}-${++counter}`;
  // Murmur3 tokens spread over the whole range.
  const step = 2n ** 64n / BigInt(n);
  const nodes: CassandraNode[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(
      await cassandraNode({
        name: `${base}-${i + 1}`,
        listen: hosts[i] as string,
        port,
        storagePort,
        seeds: first,
        initialToken: String(-(2n ** 63n) + step * BigInt(i)),
        cluster: `quire-${base}`,
        ...(options.heap === undefined ? {} : { heap: options.heap }),
      }),
    );
  }
  return nodes;
}

/**
 * Resolve once every node of `nodes` sees all the others up (each node's system.peers lists
 * the n-1 others and the driver has them all up): a keyspace of RF n can then be made.
 */
export async function waitForRing(nodes: readonly CassandraNode[], timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const views = await Promise.all(
      nodes.map(async (n) => {
        const client = new cassandra.Client({
          contactPoints: [n.listen],
          localDataCenter: n.localDataCenter,
          protocolOptions: { port: n.port },
          policies: { loadBalancing: new cassandra.policies.loadBalancing.WhiteListPolicy(new cassandra.policies.loadBalancing.DCAwareRoundRobinPolicy(n.localDataCenter), [`${n.listen}:${n.port}`]) },
        });
        try {
          const rs = await client.execute('SELECT peer FROM system.peers_v2');
          return rs.rows.length;
        } catch (err) {
          return `${n.listen}: ${err instanceof Error ? err.message : String(err)}`;
        } finally {
          await client.shutdown().catch(() => {});
        }
      }),
    );
    if (views.every((v) => v === nodes.length - 1)) return;
    last = JSON.stringify(views);
    if (Date.now() > end) throw new Error(`the ring of ${nodes.length} did not form within ${timeoutMs} ms (peers seen per node: ${last})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface S3ProxyInstance {
  /** The region as the services and the SDK take it (`name` is the region name given). */
  region: S3Region;
  start(): Promise<void>;
  /** Stop it (its data stays): the region is down. */
  stop(): Promise<void>;
  /** Stop and delete its data. */
  wipe(): Promise<void>;
}

/** An s3proxy instance of a test's own, standing for region `regionName`, on a free port. */
export async function s3proxyInstance(regionName: string, options: { name?: string } = {}): Promise<S3ProxyInstance> {
  const name = options.name ?? `s${process.pid}-${++counter}`;
  const port = await freePort();
  const env = { S3PROXY_IDENTITY: DEFAULT_S3_ACCESS_KEY, S3PROXY_CREDENTIAL: DEFAULT_S3_SECRET_KEY };
  return {
    region: { name: regionName, endpoint: `http://127.0.0.1:${port}`, accessKeyId: DEFAULT_S3_ACCESS_KEY, secretAccessKey: DEFAULT_S3_SECRET_KEY },
    start: () => runS3ProxyScript(['start', name, String(port)], env),
    stop: () => runS3ProxyScript(['stop', name], env),
    wipe: () => runS3ProxyScript(['wipe', name], env),
  };
}

export { CASSANDRA_SCRIPT };
