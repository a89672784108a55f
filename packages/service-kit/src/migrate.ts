/**
 * The schema migration as a step of its own (`quire migrate`, the deploy/ migration job):
 * the shared configuration (environment and QUIRE_CONFIG_FILE), then what `createStores`
 * does before a service starts — create the keyspace and apply the pending CQL migrations
 * under the migration lease, create the buckets — and nothing else. The services still
 * migrate at start (the lease makes that safe), so the job is an ordering convenience: a
 * rollout's pods find the schema ready instead of taking turns on the lease. With the
 * deployment's token variables set it also registers the first admin token and the consume
 * services' change-hint token (each once).
 */
import { z } from 'zod';
import { parseTokenString } from '@quire/core';
import { ensureBootstrapAdminToken, ensureDeploymentToken } from './auth.ts';
import type { BlobStoreConfig, MetadataStoreConfig, ServiceConfig } from './config.ts';
import { ConfigError, configLoader } from './config.ts';
import { createStores } from './stores.ts';

export interface MigrateConfig extends ServiceConfig {
  /** QUIRE_BOOTSTRAP_ADMIN_TOKEN: the token string to register as the first admin token. */
  bootstrapAdminToken?: string;
  /** QUIRE_BOOTSTRAP_HINT_TOKEN: the consume services' change-hint token, registered as a viewer token. */
  hintToken?: string;
}

/**
 * The migration's configuration: the variables every service shares, and the bootstrap
 * admin token. A malformed token is refused without echoing it (it is a secret).
 */
export const loadMigrateConfig = configLoader(
  'migrate',
  { QUIRE_BOOTSTRAP_ADMIN_TOKEN: z.string().optional(), QUIRE_BOOTSTRAP_HINT_TOKEN: z.string().optional() },
  (shared, own): MigrateConfig => {
    const admin = tokenVariable('QUIRE_BOOTSTRAP_ADMIN_TOKEN', own.QUIRE_BOOTSTRAP_ADMIN_TOKEN);
    const hint = tokenVariable('QUIRE_BOOTSTRAP_HINT_TOKEN', own.QUIRE_BOOTSTRAP_HINT_TOKEN);
    return { ...shared, ...(admin === undefined ? {} : { bootstrapAdminToken: admin }), ...(hint === undefined ? {} : { hintToken: hint }) };
  },
);

/** A token variable's value (undefined when unset); refused without echoing it (it is a secret). */
function tokenVariable(variable: string, value: string | undefined): string | undefined {
  const token = value?.trim();
  if (token === undefined || token === '') return undefined;
  if (parseTokenString(token) === undefined) {
    throw new ConfigError(variable, 'is not a Quire token (quire_<16 hex digits>_<43 base64url characters>); make one with `quire tokens mint`');
  }
  return token;
}

export interface MigrationReport {
  metadataStore: string;
  blobStore: string;
  elapsedMs: number;
  /** The bootstrap admin token's id, and whether this run registered it (false: it was there already). */
  bootstrapAdminToken?: { id: string; created: boolean };
  /** The change-hint token's id, and whether this run registered it. */
  hintToken?: { id: string; created: boolean };
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

/**
 * Migrate the metadata store, create the blob store's buckets and, with a bootstrap admin
 * token configured, register it (once); `progress` hears each step.
 */
export async function migrateStores(
  config: Pick<MigrateConfig, 'metadataStore' | 'blobStore' | 'bootstrapAdminToken' | 'hintToken'>,
  progress: (line: string) => void = () => {},
): Promise<MigrationReport> {
  const report: MigrationReport = { metadataStore: describeMetadataStore(config.metadataStore), blobStore: describeBlobStore(config.blobStore), elapsedMs: 0 };
  progress(`migrating ${report.metadataStore}; preparing ${report.blobStore}`);
  const started = performance.now();
  const stores = await createStores(config);
  try {
    report.elapsedMs = Math.round(performance.now() - started);
    progress(`schema up to date and buckets ready in ${report.elapsedMs} ms`);
    if (config.bootstrapAdminToken !== undefined) {
      const { token, created } = await ensureBootstrapAdminToken(stores.store, config.bootstrapAdminToken, 'quire migrate');
      report.bootstrapAdminToken = { id: token.id, created };
      progress(
        created
          ? `bootstrap admin token ${token.id} registered (QUIRE_BOOTSTRAP_ADMIN_TOKEN)`
          : `bootstrap admin token ${token.id} already registered${token.revokedAt === undefined ? '' : ' (revoked)'}: left as it is`,
      );
    }
    if (config.hintToken !== undefined) {
      // The consume services' change-hint streams (ADR 0009): read-only, every topic.
      const { token, created } = await ensureDeploymentToken(stores.store, config.hintToken, 'quire migrate', { name: 'consume-hints', role: 'viewer' }, 'QUIRE_BOOTSTRAP_HINT_TOKEN');
      report.hintToken = { id: token.id, created };
      progress(created ? `change-hint token ${token.id} registered as a viewer (QUIRE_BOOTSTRAP_HINT_TOKEN)` : `change-hint token ${token.id} already registered: left as it is`);
    }
  } finally {
    await stores.close();
  }
  return report;
}
