// The two store set-ups the services' integration tests run against: the embedded SQLite
// store with a local blob directory of two "regions", and Cassandra with the two s3proxy
// regions. Each `config()` call gets its own temp directory, keyspace and buckets. The
// shapes are the services' `metadataStore` / `blobStore` configuration (@quire/service-kit).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QuireServers } from './index.ts';
import { uniqueBucket, uniqueKeyspace } from './index.ts';

export interface StoreBackendConfig {
  metadataStore:
    | { kind: 'embedded'; path: string }
    | { kind: 'cassandra'; contactPoints: string[]; port: number; localDataCenter: string; keyspace: string; replicationFactor: number };
  blobStore:
    | { kind: 'fs'; regions: Array<{ name: string; dir: string }> }
    | { kind: 's3'; regions: Array<{ name: string; endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string }> };
  /** Removes the temp directory (embedded backend). */
  cleanup?: () => void;
}

export interface StoreBackend {
  name: string;
  config(): StoreBackendConfig;
}

/**
 * Both backends, naming temp directories, keyspaces and buckets after `prefix`.
 * `servers` is called only by the Cassandra backend (pass `() => inject('quireServers')`).
 */
export function storeBackends(prefix: string, servers: () => QuireServers): StoreBackend[] {
  return [
    {
      name: 'embedded + local directory',
      config() {
        const dir = mkdtempSync(join(tmpdir(), `quire-${prefix}-`));
        return {
          metadataStore: { kind: 'embedded', path: join(dir, 'quire.sqlite') },
          blobStore: { kind: 'fs', regions: [{ name: 'region-a', dir: join(dir, 'a') }, { name: 'region-b', dir: join(dir, 'b') }] },
          cleanup: () => rmSync(dir, { recursive: true, force: true }),
        };
      },
    },
    {
      name: 'cassandra + s3',
      config() {
        const { cassandra, s3 } = servers();
        return {
          metadataStore: {
            kind: 'cassandra',
            contactPoints: cassandra.contactPoints,
            port: cassandra.port,
            localDataCenter: cassandra.localDataCenter,
            keyspace: uniqueKeyspace(`${prefix}_svc`),
            replicationFactor: 1,
          },
          blobStore: { kind: 's3', regions: s3.regions.map((r) => ({ ...r, bucket: uniqueBucket(`${prefix}-${r.name}`) })) },
        };
      },
    },
  ];
}
