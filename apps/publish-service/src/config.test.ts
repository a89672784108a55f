import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

function error(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults once: embedded store and local blobs under the data dir', () => {
    const c = loadConfig({ PATH: '/bin', QUIRE_DATA_DIR: '/tmp/q' });
    expect(c).toMatchObject({
      metadataStore: { kind: 'embedded', path: '/tmp/q/quire.sqlite' },
      blobStore: { kind: 'fs', regions: [{ name: 'local', dir: '/tmp/q/blobs/local' }] },
      host: '127.0.0.1',
      httpPort: 7080,
      grpcPort: 7444,
      logLevel: 'info',
    });
  });

  it('reads cassandra and S3 settings', () => {
    const c = loadConfig({
      QUIRE_METADATA_STORE: 'cassandra',
      QUIRE_CASSANDRA_CONTACT_POINTS: 'a, b',
      QUIRE_CASSANDRA_DC: 'dc2',
      QUIRE_CASSANDRA_KEYSPACE: 'quire_test',
      QUIRE_CASSANDRA_REPLICATION_FACTOR: '1',
      QUIRE_S3_REGIONS: JSON.stringify([{ name: 'eu-west-1', endpoint: 'http://127.0.0.1:9000', bucket: 'quire-eu', accessKeyId: 'k', secretAccessKey: 's' }]),
      QUIRE_PUBLISH_HTTP_PORT: '0',
    });
    expect(c.metadataStore).toEqual({ kind: 'cassandra', contactPoints: ['a', 'b'], port: 9042, localDataCenter: 'dc2', keyspace: 'quire_test', replicationFactor: 1 });
    expect(c.blobStore).toMatchObject({ kind: 's3', regions: [{ name: 'eu-west-1', bucket: 'quire-eu' }] });
    expect(c.httpPort).toBe(0);
  });

  it('refuses malformed values and unknown variables, naming the variable', () => {
    expect(error({ QUIRE_PUBLISH_HTTP_PORT: 'http' }).variable).toBe('QUIRE_PUBLISH_HTTP_PORT');
    expect(error({ QUIRE_PUBLISH_GRPC_PORT: '70000' }).variable).toBe('QUIRE_PUBLISH_GRPC_PORT');
    expect(error({ QUIRE_METADATA_STORE: 'postgres' }).variable).toBe('QUIRE_METADATA_STORE');
    expect(error({ QUIRE_LOG_LEVEL: 'loud' }).variable).toBe('QUIRE_LOG_LEVEL');
    expect(error({ QUIRE_CASSANDRA_KEYSPACE: 'Bad-Name' }).variable).toBe('QUIRE_CASSANDRA_KEYSPACE');
    expect(error({ QUIRE_S3_REGIONS: '[{' }).message).toMatch(/^QUIRE_S3_REGIONS: is not valid JSON/);
    expect(error({ QUIRE_S3_REGIONS: JSON.stringify([{ name: 'a', bucket: 'B!' }]) }).message).toMatch(/^QUIRE_S3_REGIONS: \[0\]\.bucket/);
    expect(error({ QUIRE_S3_REGIONS: JSON.stringify([{ name: 'a', bucket: 'bkt', extra: 1 }]) }).variable).toBe('QUIRE_S3_REGIONS');
    expect(error({ QUIRE_S3_REGIONS: '[]' }).variable).toBe('QUIRE_S3_REGIONS');
    expect(error({ QUIRE_PUBLISH_PORT: '1' }).message).toMatch(/^QUIRE_PUBLISH_PORT: unknown variable/);
  });

  it('starts from one environment file shared with the consume service (its variables are ignored)', () => {
    const c = loadConfig({ QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_CONSUME_HTTP_PORT: '7081', QUIRE_CONSUME_GRPC_PORT: '7443', QUIRE_CACHE_REFRESH_MS: '5000', QUIRE_CHANGE_POLL_MS: '150', QUIRE_FLEET_FLUSH_MS: '5000' });
    expect(c.httpPort).toBe(0);
  });
});
