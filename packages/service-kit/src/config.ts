/**
 * Configuration shared by the Quire services, loaded once from an `env` object (normally
 * `process.env`) and validated with zod. A malformed value stops start-up with a message
 * naming the variable; nothing falls back silently.
 *
 * One environment file serves every Quire app, so this module knows the variables of all
 * of them (`SHARED_VARIABLES` plus `APP_VARIABLES`): an app reads the shared ones and its
 * own, ignores another app's, and refuses a `QUIRE_*` variable no Quire app knows (a typo
 * would otherwise be ignored), suggesting the closest known name. A new app adds its
 * variables to `APP_VARIABLES` and builds its loader with `configLoader`.
 *
 * The same keys can also come from a YAML or JSON file named by `QUIRE_CONFIG_FILE`
 * (see `config-file.ts`); a variable set in the environment overrides the file, and an
 * unknown key or a bad value in the file is refused naming the key and the file.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { readConfigFile } from './config-file.ts';
import { ConfigError, unknownMessage } from './config-error.ts';

export { ConfigError } from './config-error.ts';

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

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What every service reads: its stores, the address to listen on, the log level. */
export interface ServiceConfig {
  metadataStore: MetadataStoreConfig;
  blobStore: BlobStoreConfig;
  host: string;
  logLevel: LogLevel;
  /** Access control (QUIRE_AUTH); absent = off. */
  auth?: AuthConfig;
}

export interface AuthConfig {
  /** Every request needs an API token, checked against the roles (`@quire/core` authorize). */
  enabled: boolean;
  /** How long a verified token is trusted before the store is read again (revocation delay). */
  cacheMs: number;
}

/** The variables every service reads, with their meaning. */
export const SHARED_VARIABLES = {
  QUIRE_METADATA_STORE: 'embedded (default) | cassandra',
  QUIRE_DATA_DIR: 'embedded store: directory of the SQLite file and, without S3, of the blobs (default ./.quire-data)',
  QUIRE_CASSANDRA_CONTACT_POINTS: 'cassandra: comma-separated hosts, no ports (default 127.0.0.1)',
  QUIRE_CASSANDRA_PORT: 'cassandra: native protocol port (default 9042)',
  QUIRE_CASSANDRA_DC: 'cassandra: local data centre (default datacenter1)',
  QUIRE_CASSANDRA_KEYSPACE: 'cassandra: keyspace (default quire)',
  QUIRE_CASSANDRA_REPLICATION_FACTOR: 'cassandra: replicas in the local data centre when the keyspace is created (default 3)',
  QUIRE_S3_REGIONS: 'JSON array of {name, endpoint, bucket, accessKeyId, secretAccessKey}; without it blobs go to QUIRE_DATA_DIR/blobs',
  QUIRE_LOCAL_REGION: 'region name of the local blob directory when no S3 is configured (default local)',
  QUIRE_HOST: 'address to listen on (default 127.0.0.1)',
  QUIRE_LOG_LEVEL: 'fatal | error | warn | info (default) | debug | trace | silent',
  QUIRE_CONFIG_FILE:
    'optional YAML or JSON file mapping these same names to values (e.g. `QUIRE_CASSANDRA_PORT: 9042`); a variable set in the environment overrides the file; an unknown key or a bad value in it stops start-up naming the key and the file',
  QUIRE_AUTH: 'on | off (default): require an API token (Authorization: Bearer) on every REST and gRPC call, checked against its role and topic prefixes',
  QUIRE_AUTH_CACHE_MS: 'how long a checked token is trusted before the store is read again; a revocation takes effect within this (default 2000)',
} as const;

/**
 * Each Quire app's own variables, with their meaning. Every app's loader knows all of
 * them, so a variable of another app in a shared environment file is ignored, not refused.
 */
export const APP_VARIABLES = {
  'publish-service': {
    QUIRE_PUBLISH_HTTP_PORT: 'REST port (default 7080; 0 = any free port)',
    QUIRE_PUBLISH_GRPC_PORT: 'gRPC port (default 7444; 0 = any free port)',
    QUIRE_HTTP_BODY_LIMIT_BYTES: 'largest JSON request body (default 8388608)',
    QUIRE_SCHEDULER_TICK_MS: 'scheduler work period while leading: rollout steps, changed snapshots (default 1000)',
    QUIRE_LEASE_TTL_MS: 'scheduler lease time to live; a dead leader is replaced within about this (default 15000)',
    QUIRE_REPLICA_ID: 'this replica\'s id, the scheduler lease owner (default <hostname>-<pid>)',
    QUIRE_SNAPSHOT_EVERY_MS: 'how often the leader rewrites every topic\'s fallback snapshot (default 60000)',
    QUIRE_ORPHAN_SWEEP_EVERY_MS: 'how often the leader sweeps S3 for objects of publishes that never committed (default 600000)',
    QUIRE_ORPHAN_GRACE_MS: 'an uncommitted object younger than this is left alone (an upload may still be committing; default 3600000)',
  },
  // `quire migrate` (apps/cli): applies the schema migrations and creates the buckets, then exits.
  migrate: {
    QUIRE_BOOTSTRAP_ADMIN_TOKEN:
      'quire migrate: a token string (make one with `quire tokens mint`) registered as an admin token when the store has no token of its id yet (only its hash is stored); how a deployment with QUIRE_AUTH=on gets its first admin',
    QUIRE_BOOTSTRAP_HINT_TOKEN:
      'quire migrate: the consume services\' change-hint token (the value of their QUIRE_PUBLISH_HINT_TOKEN, made with `quire tokens mint`), registered as a viewer token named consume-hints when the store has no token of its id yet',
  },
  'consume-service': {
    QUIRE_CONSUME_HTTP_PORT: 'REST port (default 7081; 0 = any free port)',
    QUIRE_CONSUME_GRPC_PORT: 'gRPC port (default 7443; 0 = any free port)',
    QUIRE_CACHE_REFRESH_MS: 'full refresh period of the topic cache (default 5000)',
    QUIRE_CHANGE_POLL_MS: 'change-feed poll period (default 150; up to 600000: with change hints the poll only catches what a lost hint missed)',
    QUIRE_FLEET_FLUSH_MS: 'how often aggregated fleet reports are written (default 5000)',
    QUIRE_POLL_CONCURRENCY_PER_APP: 'poll evaluations of one application at once (default 32)',
    QUIRE_POLL_QUEUE_PER_APP: 'poll evaluations of one application waiting; more are refused with 429 / RESOURCE_EXHAUSTED (default 2000)',
    QUIRE_HELD_POLLS_PER_APP: 'long-polls of one application held at once; more are refused (default 50000)',
    QUIRE_READY_MAX_CACHE_AGE_MS: 'readiness: the instance stays ready (store "degraded") while its last full cache refresh is younger than this, even with the metadata store down (default 300000)',
    QUIRE_PUBLISH_HINT_ENDPOINTS:
      'change hints (ADR 0009): gRPC host:port of the publish replicas, comma-separated, or a host name resolving to all of them (re-resolved every 30 s); the service holds a stream to each and reads the change feed as soon as one commits a change, instead of waiting for the next QUIRE_CHANGE_POLL_MS; empty (default) = change feed only',
    QUIRE_PUBLISH_HINT_TOKEN:
      'change hints: API token sent on the hint streams when the publish service runs with QUIRE_AUTH=on (any role; only hints of topics it may read are sent, so give it a token covering every topic, e.g. a viewer token)',
  },
  // Read by apps/cli through commander's `.env()`; kept here so the services accept them.
  cli: {
    QUIRE_PUBLISH: 'quire CLI: gRPC address of the publish service (default 127.0.0.1:7444)',
    QUIRE_CONSUME: 'quire CLI: gRPC address(es) of the consume service, comma-separated (default 127.0.0.1:7443)',
    QUIRE_ACTOR: 'quire CLI: who you are, for the audit log and as version publisher (default: your user name)',
    QUIRE_TOKEN: 'quire CLI and SDK examples: the API token to send (Authorization: Bearer); needed when the services run with QUIRE_AUTH=on',
    QUIRE_KEYRING: 'quire CLI: keyring file of the data-encryption keys of encrypted topics (publish encrypts, get decrypts)',
  },
} as const;

export type QuireApp = keyof typeof APP_VARIABLES;

/** Every `QUIRE_*` variable some Quire app reads. */
export function knownVariables(): string[] {
  return [...Object.keys(SHARED_VARIABLES), ...Object.values(APP_VARIABLES).flatMap((vars) => Object.keys(vars))];
}


/** A TCP port variable (0 = any free port). */
export const portSchema = z.coerce.number().int().min(0).max(65535);
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

const sharedShape = {
  QUIRE_METADATA_STORE: z.enum(['embedded', 'cassandra']).default('embedded'),
  QUIRE_DATA_DIR: nonEmpty.default('./.quire-data'),
  QUIRE_CASSANDRA_CONTACT_POINTS: nonEmpty.default('127.0.0.1'),
  QUIRE_CASSANDRA_PORT: portSchema.default(9042),
  QUIRE_CASSANDRA_DC: nonEmpty.default('datacenter1'),
  QUIRE_CASSANDRA_KEYSPACE: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,47}$/, 'keyspace names are a-z, 0-9 and "_", starting with a letter')
    .default('quire'),
  QUIRE_CASSANDRA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(15).default(3),
  QUIRE_S3_REGIONS: z.string().optional(),
  QUIRE_LOCAL_REGION: regionName.default('local'),
  QUIRE_HOST: nonEmpty.default('127.0.0.1'),
  QUIRE_LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  QUIRE_CONFIG_FILE: z.string().optional(), // read before the schema applies (see configLoader)
  QUIRE_AUTH: z.enum(['on', 'off']).default('off'),
  QUIRE_AUTH_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(2000),
} satisfies Record<keyof typeof SHARED_VARIABLES, z.ZodType>;

type SharedVars = z.output<z.ZodObject<typeof sharedShape>>;

export type Env = Record<string, string | undefined>;

/** An app's own variables: a zod schema for each name the app has in `APP_VARIABLES`. */
export type AppShape<A extends QuireApp> = { [K in keyof (typeof APP_VARIABLES)[A]]: z.ZodType };

/**
 * Build an app's `loadConfig(env)`: the shared variables plus the app's own (`shape`,
 * one schema per name registered for `app`), turned into the app's config by `build`.
 * The loader throws ConfigError naming the first bad or unknown variable.
 */
export function configLoader<A extends QuireApp, S extends AppShape<A>, C>(
  app: A,
  shape: S,
  build: (shared: ServiceConfig, own: z.output<z.ZodObject<S>>) => C,
): (env: Env) => C {
  const schema = z.object({ ...sharedShape, ...shape });
  const reads = new Set([...Object.keys(SHARED_VARIABLES), ...Object.keys(APP_VARIABLES[app])]);
  const known = knownVariables();
  return (env) => {
    const given: Record<string, string> = {};
    // Which values came from the configuration file (the environment overrides them).
    const fromFile = new Set<string>();
    const file = env['QUIRE_CONFIG_FILE'];
    if (file !== undefined && file !== '') {
      for (const [k, v] of Object.entries(readConfigFile(file, known))) {
        if (!reads.has(k)) continue; // another Quire app's key (readConfigFile refused unknown ones)
        given[k] = v;
        fromFile.add(k);
      }
    }
    for (const [k, v] of Object.entries(env)) {
      if (!k.startsWith('QUIRE_') || v === undefined) continue;
      if (!reads.has(k)) {
        if (known.includes(k)) continue; // another Quire app's variable
        throw new ConfigError(k, unknownMessage(k, known));
      }
      if (v !== '') {
        given[k] = v;
        fromFile.delete(k);
      }
    }
    const fileOf = (variable: string): string | undefined => (fromFile.has(variable) ? file : undefined);
    const parsed = schema.safeParse(given);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const variable = String(issue?.path[0] ?? 'QUIRE_*');
      const inFile = fileOf(variable);
      const got = `got ${JSON.stringify(given[variable])}${inFile === undefined ? '' : ` in ${inFile}`}`;
      throw new ConfigError(variable, `${issue?.message ?? 'invalid'} (${got})`, inFile);
    }
    const vars = parsed.data as SharedVars & z.output<z.ZodObject<S>>;
    try {
      return build(sharedConfig(vars), vars);
    } catch (err) {
      // A value refused after the schema (e.g. QUIRE_S3_REGIONS' JSON): say which file set it.
      const inFile = err instanceof ConfigError && err.file === undefined ? fileOf(err.variable) : undefined;
      if (err instanceof ConfigError && inFile !== undefined) {
        throw new ConfigError(err.variable, `${err.message.slice(err.variable.length + 2)} (set in ${inFile})`, inFile);
      }
      throw err;
    }
  };
}

function sharedConfig(c: SharedVars): ServiceConfig {
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
    logLevel: c.QUIRE_LOG_LEVEL,
    auth: { enabled: c.QUIRE_AUTH === 'on', cacheMs: c.QUIRE_AUTH_CACHE_MS },
  };
}
