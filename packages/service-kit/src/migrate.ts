/**
 * The schema migration as a step of its own (`quire migrate`, the deploy/ migration job):
 * the shared configuration (environment and QUIRE_CONFIG_FILE), then what `createStores`
 * does before a service starts — create the keyspace and apply the pending CQL migrations
 * under the migration lease, create the buckets — and nothing else. The services still
 * migrate at start (the lease makes that safe), so the job is an ordering convenience: a
 * rollout's pods find the schema ready instead of taking turns on the lease.
 */
import type { BlobStoreConfig, MetadataStoreConfig, ServiceConfig } from './config.ts';
import { configLoader } from './config.ts';
import { createStores } from './stores.ts';

/** The migration's configuration: the variables every service shares, nothing else. */
export const loadMigrateConfig = configLoader('migrate', {}, (shared) => shared);

export interface MigrationReport {
  metadataStore: string;
  blobStore: string;
  elapsedMs: number;
}

export function describeMetadataStore(ms: MetadataStoreConfig): string {
  return ms.kind === 'embedded'
    ? `embedded SQLite ${ms.path}`
    : `cassandra keyspace ${ms.keyspace} on ${ms.contactPoints.join(',')}:${ms.port} (data centre ${ms.localDataCenter}, replication ${ms.replicationFactor})`;
}

export function describeBlobStore(bs: BlobStoreConfig): string {
  return bs.kind === 'fs'
    ? `local directories ${bs.regions.map((r) => r.dir).join(', ')}`
    : `S3 buckets ${bs.regions.map((r) => `${r.bucket} (${r.name}${r.endpoint === undefined ? '' : ` at ${r.endpoint}`})`).join(', ')}`;
}

/** Migrate the metadata store and create the blob store's buckets; `progress` hears each step. */
export async function migrateStores(config: Pick<ServiceConfig, 'metadataStore' | 'blobStore'>, progress: (line: string) => void = () => {}): Promise<MigrationReport> {
  const report = { metadataStore: describeMetadataStore(config.metadataStore), blobStore: describeBlobStore(config.blobStore) };
  progress(`migrating ${report.metadataStore}; preparing ${report.blobStore}`);
  const started = performance.now();
  const stores = await createStores(config);
  await stores.close();
  const elapsedMs = Math.round(performance.now() - started);
  progress(`schema up to date and buckets ready in ${elapsedMs} ms`);
  return { ...report, elapsedMs };
}
