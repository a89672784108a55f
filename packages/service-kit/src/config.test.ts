import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { APP_VARIABLES, ConfigError, SHARED_VARIABLES, configLoader, knownVariables, portSchema } from './config.ts';

// A loader built like the apps' own: the shared variables plus the publish service's.
const load = configLoader(
  'publish-service',
  {
    QUIRE_PUBLISH_HTTP_PORT: portSchema.default(7080),
    QUIRE_PUBLISH_GRPC_PORT: portSchema.default(7444),
    QUIRE_HTTP_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(8 * 1024 * 1024),
    QUIRE_SCHEDULER_TICK_MS: z.coerce.number().int().default(1000),
    QUIRE_LEASE_TTL_MS: z.coerce.number().int().default(15_000),
    QUIRE_REPLICA_ID: z.string().optional(),
    QUIRE_SNAPSHOT_EVERY_MS: z.coerce.number().int().default(60_000),
    QUIRE_ORPHAN_SWEEP_EVERY_MS: z.coerce.number().int().default(600_000),
    QUIRE_ORPHAN_GRACE_MS: z.coerce.number().int().default(3_600_000),
  },
  (shared, own) => ({ ...shared, httpPort: own.QUIRE_PUBLISH_HTTP_PORT }),
);

function error(env: Record<string, string>): ConfigError {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configLoader', () => {
  it('applies the shared defaults once and ignores non-Quire variables', () => {
    expect(load({ PATH: '/bin', HOME: '/root', QUIRE_DATA_DIR: '/tmp/q' })).toEqual({
      metadataStore: { kind: 'embedded', path: '/tmp/q/quire.sqlite' },
      blobStore: { kind: 'fs', regions: [{ name: 'local', dir: '/tmp/q/blobs/local' }] },
      host: '127.0.0.1',
      logLevel: 'info',
      auth: { enabled: false, cacheMs: 2000 },
      httpPort: 7080,
    });
  });

  it('reads the access-control switch', () => {
    expect(load({ QUIRE_AUTH: 'on', QUIRE_AUTH_CACHE_MS: '0' })).toMatchObject({ auth: { enabled: true, cacheMs: 0 } });
    expect(() => load({ QUIRE_AUTH: 'yes' })).toThrow(/QUIRE_AUTH/);
  });

  it('treats an empty value as unset', () => {
    expect(load({ QUIRE_LOG_LEVEL: '', QUIRE_PUBLISH_HTTP_PORT: '' })).toMatchObject({ logLevel: 'info', httpPort: 7080 });
  });

  it('reads cassandra and S3 settings', () => {
    const c = load({
      QUIRE_METADATA_STORE: 'cassandra',
      QUIRE_CASSANDRA_CONTACT_POINTS: 'a, b',
      QUIRE_CASSANDRA_PORT: '9043',
      QUIRE_S3_REGIONS: JSON.stringify([{ name: 'eu', endpoint: 'http://127.0.0.1:9000', bucket: 'quire-eu' }]),
    });
    expect(c.metadataStore).toEqual({ kind: 'cassandra', contactPoints: ['a', 'b'], port: 9043, localDataCenter: 'datacenter1', keyspace: 'quire', replicationFactor: 3 });
    expect(c.blobStore).toEqual({ kind: 's3', regions: [{ name: 'eu', endpoint: 'http://127.0.0.1:9000', bucket: 'quire-eu' }] });
  });

  it('refuses a malformed value, naming the variable and the value', () => {
    expect(error({ QUIRE_CASSANDRA_PORT: 'ninety' }).message).toMatch(/^QUIRE_CASSANDRA_PORT: .*\(got "ninety"\)$/);
    expect(error({ QUIRE_PUBLISH_HTTP_PORT: '70000' }).variable).toBe('QUIRE_PUBLISH_HTTP_PORT');
    expect(error({ QUIRE_LOG_LEVEL: 'loud' }).variable).toBe('QUIRE_LOG_LEVEL');
    expect(error({ QUIRE_METADATA_STORE: 'cassandra', QUIRE_CASSANDRA_CONTACT_POINTS: 'a,,b' }).message).toBe('QUIRE_CASSANDRA_CONTACT_POINTS: has an empty entry');
    expect(error({ QUIRE_S3_REGIONS: '[{' }).message).toMatch(/^QUIRE_S3_REGIONS: is not valid JSON/);
    expect(error({ QUIRE_S3_REGIONS: JSON.stringify([{ name: 'a', bucket: 'B!' }]) }).message).toMatch(/^QUIRE_S3_REGIONS: \[0\]\.bucket/);
  });

  it('refuses a variable no Quire app knows, suggesting the closest known name', () => {
    const foo = error({ QUIRE_FOO: '1' });
    expect(foo.variable).toBe('QUIRE_FOO');
    expect(foo.message).toMatch(/^QUIRE_FOO: unknown variable; did you mean QUIRE_[A-Z_]+\?/);
    expect(error({ QUIRE_PUBLSH_GRPC_PORT: '1' }).message).toMatch(/^QUIRE_PUBLSH_GRPC_PORT: unknown variable; did you mean QUIRE_PUBLISH_GRPC_PORT\?/);
    expect(error({ QUIRE_CACHE_REFRESH: '1' }).message).toMatch(/did you mean QUIRE_CACHE_REFRESH_MS\?/);
  });

  it("ignores another Quire app's variables (one environment file for every app)", () => {
    const shared = { QUIRE_CONSUME_HTTP_PORT: 'not even a port', QUIRE_CACHE_REFRESH_MS: '100', QUIRE_PUBLISH_HTTP_PORT: '0' };
    expect(load(shared).httpPort).toBe(0);
    expect(load({ QUIRE_PUBLISH: '10.0.0.1:7444', QUIRE_ACTOR: 'ci' }).httpPort).toBe(7080);
  });

  it('knows every variable once', () => {
    const all = knownVariables();
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(expect.arrayContaining([...Object.keys(SHARED_VARIABLES), ...Object.keys(APP_VARIABLES['consume-service'])]));
  });
});
