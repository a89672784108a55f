/**
 * The consume service's configuration, loaded once from an `env` object (normally
 * `process.env`) and validated with zod, like the publish service's: a malformed value or
 * an unknown `QUIRE_*` variable stops start-up with a message naming the variable.
 * The store variables are the publish service's (same names, same meaning); the publish
 * service's own ports are accepted and ignored so both can share one environment file.
 */
import { resolve } from 'node:path';
import { z } from 'zod';

export interface S3RegionConfig {
  name: string;
  endpoint?: string;
  bucket: string;
  accessKeyId?: string;
  secretAccessKey?: string;
}

export type MetadataStoreConfig =
  | { kind: 'embedded'; path: string }
  | { kind: 'cassandra'; contactPoints: string[]; port: number; localDataCenter: string; keyspace: string; replicationFactor: number };

export type BlobStoreConfig = { kind: 'fs'; regions: Array<{ name: string; dir: string }> } | { kind: 's3'; regions: S3RegionConfig[] };

export interface ConsumeConfig {
  metadataStore: MetadataStoreConfig;
  blobStore: BlobStoreConfig;
  host: string;
  /** 0 = any free port. */
  httpPort: number;
  grpcPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Full cache refresh period. */
  cacheRefreshMs: number;
  /** Change-feed poll period (prompt refresh of changed topics). */
  changePollMs: number;
  /** Fleet reports are written this often. */
  fleetFlushMs: number;
}

export const CONFIG_VARIABLES = {
  QUIRE_METADATA_STORE: 'embedded (default) | cassandra',
  QUIRE_DATA_DIR: 'embedded store: directory of the SQLite file and, without S3, of the blobs (default ./.quire-data)',
  QUIRE_CASSANDRA_CONTACT_POINTS: 'cassandra: comma-separated hosts, no ports (default 127.0.0.1)',
  QUIRE_CASSANDRA_PORT: 'cassandra: native protocol port (default 9042)',
  QUIRE_CASSANDRA_DC: 'cassandra: local data centre (default datacenter1)',
  QUIRE_CASSANDRA_KEYSPACE: 'cassandra: keyspace (default quire)',
  QUIRE_CASSANDRA_REPLICATION_FACTOR: 'cassandra: replicas in the local data centre when the keyspace is created (default 3)',
  QUIRE_S3_REGIONS: 'JSON array of {name, endpoint, bucket, accessKeyId, secretAccessKey}; without it blobs are in QUIRE_DATA_DIR/blobs',
  QUIRE_LOCAL_REGION: 'region name of the local blob directory when no S3 is configured (default local)',
  QUIRE_CONSUME_HTTP_PORT: 'REST port (default 7081; 0 = any free port)',
  QUIRE_CONSUME_GRPC_PORT: 'gRPC port (default 7443; 0 = any free port)',
  QUIRE_HOST: 'address to listen on (default 127.0.0.1)',
  QUIRE_LOG_LEVEL: 'fatal | error | warn | info (default) | debug | trace | silent',
  QUIRE_CACHE_REFRESH_MS: 'full refresh period of the topic cache (default 5000)',
  QUIRE_CHANGE_POLL_MS: 'change-feed poll period (default 150)',
  QUIRE_FLEET_FLUSH_MS: 'how often aggregated fleet reports are written (default 5000)',
} as const;

/** The publish service's own variables: known, not used here. */
const IGNORED = new Set(['QUIRE_PUBLISH_HTTP_PORT', 'QUIRE_PUBLISH_GRPC_PORT', 'QUIRE_HTTP_BODY_LIMIT_BYTES']);

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const nonEmpty = z.string().trim().min(1);
const regionName = z.string().regex(/^[A-Za-z0-9._-]+$/, 'region names are A-Z, a-z, 0-9, ".", "_" and "-"');
const s3Regions = z
  .array(
    z.strictObject({
      name: regionName,
      endpoint: z.url().optional(),
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not a valid bucket name'),
      accessKeyId: z.string().min(1).optional(),
      secretAccessKey: z.string().min(1).optional(),
    }),
  )
  .min(1, 'list at least one region')
  .refine((rs) => new Set(rs.map((r) => r.name)).size === rs.length, 'region names must be unique');

const schema = z.object({
  QUIRE_METADATA_STORE: z.enum(['embedded', 'cassandra']).default('embedded'),
  QUIRE_DATA_DIR: nonEmpty.default('./.quire-data'),
  QUIRE_CASSANDRA_CONTACT_POINTS: nonEmpty.default('127.0.0.1'),
  QUIRE_CASSANDRA_PORT: port.default(9042),
  QUIRE_CASSANDRA_DC: nonEmpty.default('datacenter1'),
  QUIRE_CASSANDRA_KEYSPACE: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,47}$/, 'keyspace names are a-z, 0-9 and "_", starting with a letter')
    .default('quire'),
  QUIRE_CASSANDRA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(15).default(3),
  QUIRE_S3_REGIONS: z.string().optional(),
  QUIRE_LOCAL_REGION: regionName.default('local'),
  QUIRE_CONSUME_HTTP_PORT: port.default(7081),
  QUIRE_CONSUME_GRPC_PORT: port.default(7443),
  QUIRE_HOST: nonEmpty.default('127.0.0.1'),
  QUIRE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  QUIRE_CACHE_REFRESH_MS: z.coerce.number().int().min(100).max(3_600_000).default(5000),
  QUIRE_CHANGE_POLL_MS: z.coerce.number().int().min(10).max(60_000).default(150),
  QUIRE_FLEET_FLUSH_MS: z.coerce.number().int().min(100).max(3_600_000).default(5000),
});

/** Read the configuration from `env`; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Record<string, string | undefined>): ConsumeConfig {
  const known = new Set(Object.keys(CONFIG_VARIABLES));
  const given: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('QUIRE_') || v === undefined || IGNORED.has(k)) continue;
    if (!known.has(k)) throw new ConfigError(k, `unknown variable; the consume service reads ${[...known].join(', ')}`);
    if (v !== '') given[k] = v;
  }
  const parsed = schema.safeParse(given);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? 'QUIRE_*');
    throw new ConfigError(variable, `${issue?.message ?? 'invalid'} (got ${JSON.stringify(given[variable])})`);
  }
  const c = parsed.data;
  const dataDir = resolve(c.QUIRE_DATA_DIR);

  let metadataStore: MetadataStoreConfig;
  if (c.QUIRE_METADATA_STORE === 'embedded') {
    metadataStore = { kind: 'embedded', path: resolve(dataDir, 'quire.sqlite') };
  } else {
    const points = c.QUIRE_CASSANDRA_CONTACT_POINTS.split(',').map((s) => s.trim());
    if (points.some((p) => p === '')) throw new ConfigError('QUIRE_CASSANDRA_CONTACT_POINTS', 'has an empty entry');
    metadataStore = {
      kind: 'cassandra',
      contactPoints: points,
      port: c.QUIRE_CASSANDRA_PORT,
      localDataCenter: c.QUIRE_CASSANDRA_DC,
      keyspace: c.QUIRE_CASSANDRA_KEYSPACE,
      replicationFactor: c.QUIRE_CASSANDRA_REPLICATION_FACTOR,
    };
  }

  let blobStore: BlobStoreConfig;
  if (c.QUIRE_S3_REGIONS !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(c.QUIRE_S3_REGIONS);
    } catch {
      throw new ConfigError('QUIRE_S3_REGIONS', 'is not valid JSON (expected an array of {name, endpoint, bucket, accessKeyId, secretAccessKey})');
    }
    const regions = s3Regions.safeParse(json);
    if (!regions.success) {
      const issue = regions.error.issues[0];
      const where = issue?.path.length ? `[${issue.path.join('].')}` : '';
      throw new ConfigError('QUIRE_S3_REGIONS', `${where ? `${where}: ` : ''}${issue?.message ?? 'invalid'}`);
    }
    blobStore = { kind: 's3', regions: regions.data };
  } else {
    blobStore = { kind: 'fs', regions: [{ name: c.QUIRE_LOCAL_REGION, dir: resolve(dataDir, 'blobs', c.QUIRE_LOCAL_REGION) }] };
  }

  return {
    metadataStore,
    blobStore,
    host: c.QUIRE_HOST,
    httpPort: c.QUIRE_CONSUME_HTTP_PORT,
    grpcPort: c.QUIRE_CONSUME_GRPC_PORT,
    logLevel: c.QUIRE_LOG_LEVEL,
    cacheRefreshMs: c.QUIRE_CACHE_REFRESH_MS,
    changePollMs: c.QUIRE_CHANGE_POLL_MS,
    fleetFlushMs: c.QUIRE_FLEET_FLUSH_MS,
  };
}
