/**
 * The publish service's configuration: the variables every Quire service shares (stores,
 * host, log level; see `@quire/service-kit`) plus its own ports and body limit, loaded
 * once from an `env` object (normally `process.env`). A malformed value or a `QUIRE_*`
 * variable no Quire app knows stops start-up with a message naming the variable; another
 * app's variables (one environment file for all) are ignored.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { APP_VARIABLES, SHARED_VARIABLES, configLoader, portSchema, type ServiceConfig } from '@quire/service-kit';

export { ConfigError } from '@quire/service-kit';
export type { BlobStoreConfig, MetadataStoreConfig, S3RegionConfig } from '@quire/service-kit';

export interface PublishConfig extends ServiceConfig {
  /** 0 = any free port. */
  httpPort: number;
  grpcPort: number;
  /** Largest JSON request body of the REST API (inline publishes carry their data in it). */
  httpBodyLimitBytes: number;
  /** Scheduler: work period while leading, lease TTL, this replica's id (lease owner), full snapshot period. */
  schedulerTickMs: number;
  leaseTtlMs: number;
  replicaId: string;
  snapshotEveryMs: number;
  /** Orphan sweep: period, and the age under which an uncommitted object is left alone. */
  orphanSweepEveryMs: number;
  orphanGraceMs: number;
}

/** Every variable the publish service reads, with its meaning. */
export const CONFIG_VARIABLES = { ...SHARED_VARIABLES, ...APP_VARIABLES['publish-service'] } as const;

/** Read the configuration from `env`. Throws ConfigError naming the first bad variable. */
export const loadConfig: (env: Record<string, string | undefined>) => PublishConfig = configLoader(
  'publish-service',
  {
    QUIRE_PUBLISH_HTTP_PORT: portSchema.default(7080),
    QUIRE_PUBLISH_GRPC_PORT: portSchema.default(7444),
    QUIRE_HTTP_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
    QUIRE_SCHEDULER_TICK_MS: z.coerce.number().int().min(10).max(3_600_000).default(1000),
    QUIRE_LEASE_TTL_MS: z.coerce.number().int().min(300).max(3_600_000).default(15_000),
    QUIRE_REPLICA_ID: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'replica ids are 1-128 characters of A-Z, a-z, 0-9, ".", "_", ":" and "-"').optional(),
    QUIRE_SNAPSHOT_EVERY_MS: z.coerce.number().int().min(100).max(86_400_000).default(60_000),
    QUIRE_ORPHAN_SWEEP_EVERY_MS: z.coerce.number().int().min(100).max(86_400_000).default(600_000),
    QUIRE_ORPHAN_GRACE_MS: z.coerce.number().int().min(0).max(30 * 86_400_000).default(3_600_000),
  },
  (shared, c) => ({
    ...shared,
    httpPort: c.QUIRE_PUBLISH_HTTP_PORT,
    grpcPort: c.QUIRE_PUBLISH_GRPC_PORT,
    httpBodyLimitBytes: c.QUIRE_HTTP_BODY_LIMIT_BYTES,
    schedulerTickMs: c.QUIRE_SCHEDULER_TICK_MS,
    leaseTtlMs: c.QUIRE_LEASE_TTL_MS,
    replicaId: c.QUIRE_REPLICA_ID ?? `${hostname()}-${process.pid}`,
    snapshotEveryMs: c.QUIRE_SNAPSHOT_EVERY_MS,
    orphanSweepEveryMs: c.QUIRE_ORPHAN_SWEEP_EVERY_MS,
    orphanGraceMs: c.QUIRE_ORPHAN_GRACE_MS,
  }),
);
