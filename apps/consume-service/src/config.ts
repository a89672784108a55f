/**
 * The consume service's configuration: the variables every Quire service shares (stores,
 * host, log level; see `@quire/service-kit`) plus its own ports and cache periods, loaded
 * once from an `env` object (normally `process.env`). A malformed value or a `QUIRE_*`
 * variable no Quire app knows stops start-up with a message naming the variable; another
 * app's variables (one environment file for all) are ignored.
 */
import { z } from 'zod';
import { parseTokenString } from '@quire/core';
import { APP_VARIABLES, ConfigError, SHARED_VARIABLES, configLoader, portSchema, type ServiceConfig } from '@quire/service-kit';
import { parseHintEndpoints } from './hints.ts';

export { ConfigError } from '@quire/service-kit';
export type { BlobStoreConfig, MetadataStoreConfig, S3RegionConfig } from '@quire/service-kit';

export interface ConsumeConfig extends ServiceConfig {
  /** 0 = any free port. */
  httpPort: number;
  grpcPort: number;
  /** Full cache refresh period. */
  cacheRefreshMs: number;
  /** Change-feed poll period (prompt refresh of changed topics). */
  changePollMs: number;
  /** Fleet reports are written this often. */
  fleetFlushMs: number;
  /** Per-application limits (limiter.ts); the loader always sets them, defaults apply when absent. */
  pollConcurrencyPerApp?: number;
  pollQueuePerApp?: number;
  heldPollsPerApp?: number;
  /** /readyz and gRPC health stay ready while the cache is younger than this, even with the store down. */
  readyMaxCacheAgeMs?: number;
  /** Change hints (ADR 0009): publish replicas' gRPC `host:port`s to watch; empty = none (the change feed alone). */
  publishHintEndpoints?: string[];
  /** Token sent on the hint streams (needed when the publish service runs with QUIRE_AUTH=on). */
  publishHintToken?: string;
}

/** Every variable the consume service reads, with its meaning. */
export const CONFIG_VARIABLES = { ...SHARED_VARIABLES, ...APP_VARIABLES['consume-service'] } as const;

/** Read the configuration from `env`; throws ConfigError naming the first bad variable. */
export const loadConfig: (env: Record<string, string | undefined>) => ConsumeConfig = configLoader(
  'consume-service',
  {
    QUIRE_CONSUME_HTTP_PORT: portSchema.default(7081),
    QUIRE_CONSUME_GRPC_PORT: portSchema.default(7443),
    QUIRE_CACHE_REFRESH_MS: z.coerce.number().int().min(100).max(3_600_000).default(5000),
    QUIRE_CHANGE_POLL_MS: z.coerce.number().int().min(10).max(600_000).default(150),
    QUIRE_FLEET_FLUSH_MS: z.coerce.number().int().min(100).max(3_600_000).default(5000),
    QUIRE_POLL_CONCURRENCY_PER_APP: z.coerce.number().int().min(1).max(10_000).default(32),
    QUIRE_POLL_QUEUE_PER_APP: z.coerce.number().int().min(0).max(1_000_000).default(2000),
    QUIRE_HELD_POLLS_PER_APP: z.coerce.number().int().min(1).max(10_000_000).default(50_000),
    QUIRE_READY_MAX_CACHE_AGE_MS: z.coerce.number().int().min(1000).max(86_400_000).default(300_000),
    QUIRE_PUBLISH_HINT_ENDPOINTS: z
      .string()
      .default('')
      .refine((v) => {
        try {
          parseHintEndpoints(v);
          return true;
        } catch {
          return false;
        }
      }, 'must be a comma-separated list of host:port'),
    // Checked below, so that a malformed token (a secret) is never echoed.
    QUIRE_PUBLISH_HINT_TOKEN: z.string().optional(),
  },
  (shared, c) => ({
    ...shared,
    httpPort: c.QUIRE_CONSUME_HTTP_PORT,
    grpcPort: c.QUIRE_CONSUME_GRPC_PORT,
    cacheRefreshMs: c.QUIRE_CACHE_REFRESH_MS,
    changePollMs: c.QUIRE_CHANGE_POLL_MS,
    fleetFlushMs: c.QUIRE_FLEET_FLUSH_MS,
    pollConcurrencyPerApp: c.QUIRE_POLL_CONCURRENCY_PER_APP,
    pollQueuePerApp: c.QUIRE_POLL_QUEUE_PER_APP,
    heldPollsPerApp: c.QUIRE_HELD_POLLS_PER_APP,
    readyMaxCacheAgeMs: c.QUIRE_READY_MAX_CACHE_AGE_MS,
    publishHintEndpoints: c.QUIRE_PUBLISH_HINT_ENDPOINTS.split(',').map((e) => e.trim()).filter((e) => e !== ''),
    ...hintToken(c.QUIRE_PUBLISH_HINT_TOKEN),
  }),
);

function hintToken(value: string | undefined): { publishHintToken?: string } {
  const token = value?.trim();
  if (token === undefined || token === '') return {};
  if (parseTokenString(token) === undefined) {
    throw new ConfigError('QUIRE_PUBLISH_HINT_TOKEN', 'is not a Quire token (quire_<16 hex digits>_<43 base64url characters>); make one with `quire tokens create`');
  }
  return { publishHintToken: token };
}
