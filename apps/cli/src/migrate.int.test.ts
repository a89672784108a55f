// `quire migrate`, as the deploy/ migration job runs it: a separate process configured by a
// QUIRE_CONFIG_FILE (plus the environment), against the real Cassandra and S3 servers. Two
// runs at once (two job pods) both succeed: the migration lease makes them take turns.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import cassandra from 'cassandra-driver';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniqueBucket, uniqueKeyspace } from '@quire/test-servers';
import { runQuire as quire } from './run-quire.ts';

const { cassandra: server, s3 } = inject('quireServers');
const dir = mkdtempSync(join(tmpdir(), 'quire-migrate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('quire migrate', () => {
  it('creates the keyspace, applies every migration and creates the buckets, from a config file; twice at once is safe', async () => {
    const keyspace = uniqueKeyspace('migrate');
    const regions = s3.regions.map((r) => ({ ...r, bucket: uniqueBucket(`migrate-${r.name}`) }));
    const file = join(dir, 'quire.yaml');
    writeFileSync(
      file,
      [
        'QUIRE_METADATA_STORE: cassandra',
        `QUIRE_CASSANDRA_CONTACT_POINTS: [${server.contactPoints.join(', ')}]`,
        `QUIRE_CASSANDRA_PORT: ${server.port}`,
        `QUIRE_CASSANDRA_DC: ${server.localDataCenter}`,
        'QUIRE_CASSANDRA_REPLICATION_FACTOR: 1',
        'QUIRE_S3_REGIONS:',
        ...regions.map((r) => `  - { name: ${r.name}, endpoint: "${r.endpoint}", bucket: ${r.bucket}, accessKeyId: ${r.accessKeyId}, secretAccessKey: ${r.secretAccessKey} }`),
        'QUIRE_PUBLISH_HTTP_PORT: 7080 # another app\'s key: ignored',
        '',
      ].join('\n'),
    );
    // The keyspace comes from the environment, which overrides nothing in the file here.
    const env = { QUIRE_CONFIG_FILE: file, QUIRE_CASSANDRA_KEYSPACE: keyspace };
    const [a, b] = await Promise.all([quire(['migrate', '--json'], env), quire(['migrate'], env)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const report = JSON.parse(a.stdout) as { metadataStore: string; blobStore: string };
    expect(report.metadataStore).toContain(`cassandra keyspace ${keyspace}`);
    for (const r of regions) expect(report.blobStore).toContain(r.bucket);
    expect(report.blobStore).not.toContain(regions[0]?.secretAccessKey);
    expect(b.stdout).toMatch(/^migrated: cassandra keyspace /);
    expect(a.stderr).toMatch(/quire migrate: schema up to date and buckets ready in \d+ ms/);

    const client = new cassandra.Client({ contactPoints: server.contactPoints, localDataCenter: server.localDataCenter, protocolOptions: { port: server.port } });
    try {
      const rows = (await client.execute(`SELECT id, name FROM ${keyspace}.schema_migrations`)).rows;
      expect(rows.length).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r['id'] as number)).size).toBe(rows.length);
      // The tables the first migration creates are there.
      const tables = await client.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [keyspace], { prepare: true });
      expect(tables.rows.map((r) => r['table_name'] as string)).toContain('topics');
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    } finally {
      await client.shutdown();
    }
    for (const r of regions) {
      const s3c = new S3Client({ region: 'us-east-1', endpoint: r.endpoint, forcePathStyle: true, credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } });
      await expect(s3c.send(new HeadBucketCommand({ Bucket: r.bucket }))).resolves.toBeDefined();
      s3c.destroy();
    }
  });

  it('stops with exit 2 on a wrong value in the config file, naming the key and the file', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'QUIRE_METADATA_STORE: casandra\n');
    const r = await quire(['migrate'], { QUIRE_CONFIG_FILE: file });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('QUIRE_METADATA_STORE');
    expect(r.stderr).toContain(file);
    expect(r.stdout).toBe('');
  });
});
