// What the fault scenarios share: the services' environment for a given Cassandra and the
// s3proxy regions, REST calls, waiting, and the one-line `[fault]` report of each figure.
import { quireStoreEnv, type S3Region } from '@quire/test-servers';
import { createStores, type Stores } from '@quire/service-kit';

export interface CassandraTarget {
  contactPoints: string[];
  port: number;
  localDataCenter: string;
}

export interface Deployment {
  cassandra: CassandraTarget;
  keyspace: string;
  replicationFactor: number;
  /** The s3proxy regions with this scenario's buckets. */
  regions: Array<S3Region & { bucket: string }>;
}

/** The environment both services read (stores, loopback, any free ports, quiet logs). */
export function serviceEnv(d: Deployment, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...quireStoreEnv(d),
    QUIRE_LOG_LEVEL: 'warn',
    QUIRE_PUBLISH_HTTP_PORT: '0',
    QUIRE_PUBLISH_GRPC_PORT: '0',
    QUIRE_CONSUME_HTTP_PORT: '0',
    QUIRE_CONSUME_GRPC_PORT: '0',
    QUIRE_CHANGE_POLL_MS: '100',
    ...extra,
  };
}

/** The test's own store instances on the same deployment (to verify what was written). */
export function storesOf(d: Deployment): Promise<Stores> {
  return createStores({
    metadataStore: { kind: 'cassandra', contactPoints: d.cassandra.contactPoints, port: d.cassandra.port, localDataCenter: d.cassandra.localDataCenter, keyspace: d.keyspace, replicationFactor: d.replicationFactor },
    blobStore: { kind: 's3', regions: d.regions },
  });
}

export interface Reply<T> {
  status: number;
  body: T;
}

/** One REST call; never throws on an HTTP status (the scenario asserts it). */
export async function rest<T = Record<string, unknown>>(base: string, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<Reply<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'x-quire-actor': 'fault-suite', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as T };
}

/** The same, failing with the answer when the status is not 2xx. */
export async function ok<T = Record<string, unknown>>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await rest<T>(base, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export interface PollAnswer {
  updates: Array<{ topic: string; version: { version: number }; via: string; inlineData?: string }>;
  errors: Array<{ topic: string; code: string; message: string }>;
  nextPollMs: number;
  stale: boolean;
}

export function pollBody(instance: string, subs: Array<{ topic: string; knownVersion?: number }>, waitMs = 0, application = 'fault-suite'): Record<string, unknown> {
  return { identity: { instance, application, region: 'region-a' }, subscriptions: subs, waitMs };
}

/** Resolve with the first defined value of `fn` (errors count as "not yet"); fail after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `; last error: ${String(last)}`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Report one measured figure of a scenario (collected from the test output). */
export function fault(line: string): void {
  console.log(`[fault] ${line}`);
}

/** Keys under a prefix in every region, as `region:key`. */
export async function objectKeys(stores: Stores, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const region of stores.blobs.regions) for await (const e of stores.blobs.list(prefix, region)) out.push(`${region}:${e.key}`);
  return out.sort();
}
