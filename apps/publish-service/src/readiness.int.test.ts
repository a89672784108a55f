// Readiness against real dependencies that go away: both services reach Cassandra and
// S3 region-a through TCP proxies this test owns, then the test cuts a proxy (the shared
// servers behind keep running) and reads /readyz, gRPC health and the error counters.
// The publish service is not ready without its store; the consume service stays ready
// ("degraded") while its cache is young enough, and is not ready once it is too old.
// Neither is ready when an S3 region does not answer.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createConsumeApp, loadConfig as loadConsumeConfig, type ConsumeApp } from '@quire/consume-service';
import { grpcHealth, metricValue, scrape, startTcpProxy, type TcpProxy } from '@quire/observability/testing';
import { uniqueBucket, uniqueKeyspace } from '@quire/test-servers';
import { createPublishApp, type PublishApp } from './app.ts';
import { loadConfig } from './config.ts';

interface Ready {
  ready: boolean;
  status: string;
  checks: Record<string, { status: string; error?: string }>;
}

let cassandraProxy: TcpProxy;
let s3Proxy: TcpProxy;
let pub: PublishApp;
/** Default readiness (cache may be 5 min old) and one that needs a cache under 1 s old. */
let con: ConsumeApp;
let strict: ConsumeApp;

beforeAll(async () => {
  const { cassandra, s3 } = inject('quireServers');
  cassandraProxy = await startTcpProxy(cassandra.contactPoints[0] ?? '127.0.0.1', cassandra.port);
  const regionA = s3.regions.find((r) => r.name === 'region-a');
  if (regionA === undefined) throw new Error('no region-a');
  const a = new URL(regionA.endpoint);
  s3Proxy = await startTcpProxy(a.hostname, Number(a.port));
  const regions = s3.regions.map((r) => ({
    ...r,
    endpoint: r.name === 'region-a' ? `http://127.0.0.1:${s3Proxy.port}` : r.endpoint,
    bucket: uniqueBucket(`ready-${r.name}`),
  }));
  const env = {
    QUIRE_METADATA_STORE: 'cassandra',
    QUIRE_CASSANDRA_CONTACT_POINTS: '127.0.0.1',
    QUIRE_CASSANDRA_PORT: String(cassandraProxy.port),
    QUIRE_CASSANDRA_DC: cassandra.localDataCenter,
    QUIRE_CASSANDRA_KEYSPACE: uniqueKeyspace('ready'),
    QUIRE_CASSANDRA_REPLICATION_FACTOR: '1',
    QUIRE_S3_REGIONS: JSON.stringify(regions),
    QUIRE_PUBLISH_HTTP_PORT: '0',
    QUIRE_PUBLISH_GRPC_PORT: '0',
    QUIRE_CONSUME_HTTP_PORT: '0',
    QUIRE_CONSUME_GRPC_PORT: '0',
    QUIRE_LOG_LEVEL: 'silent',
  };
  pub = await createPublishApp(loadConfig(env));
  con = await createConsumeApp(loadConsumeConfig(env));
  strict = await createConsumeApp(loadConsumeConfig({ ...env, QUIRE_CACHE_REFRESH_MS: '200', QUIRE_READY_MAX_CACHE_AGE_MS: '1000' }));
});

afterAll(async () => {
  await cassandraProxy?.restore();
  await s3Proxy?.restore();
  await Promise.all([pub?.close(), con?.close(), strict?.close()]);
  await Promise.all([cassandraProxy?.close(), s3Proxy?.close()]);
});

async function readyz(url: string): Promise<{ status: number; body: Ready }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as Ready };
}

/** Ask /readyz until `ok` (a dependency's state changes asynchronously); fails after 60 s. */
async function readyzUntil(url: string, ok: (r: { status: number; body: Ready }) => boolean, what: string): Promise<{ status: number; body: Ready }> {
  const end = Date.now() + 60_000;
  for (;;) {
    const r = await readyz(url);
    if (ok(r)) return r;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${r.status} ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

describe('/readyz and gRPC health follow the store and S3', () => {
  it('all up: ready, SERVING', async () => {
    for (const app of [pub, con, strict]) {
      const r = await readyz(app.httpUrl);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ ready: true, status: 'ready' });
      expect(Object.values(r.body.checks).every((c) => c.status === 'up')).toBe(true);
      expect(await grpcHealth(app.grpcAddress)).toBe('SERVING');
      const m = await scrape(app.httpUrl);
      expect(metricValue(m, 'quire_ready')).toBe(1);
    }
  });

  it('store down: publish not ready; consume ready with the store degraded while its cache is young, not ready once it is too old', async () => {
    await cassandraProxy.cut();
    const p = await readyzUntil(pub.httpUrl, (r) => r.status === 503, 'the publish service to be not ready');
    expect(p.body).toMatchObject({ ready: false, status: 'not_ready' });
    expect(p.body.checks['metadata_store']?.status).toBe('down');
    expect(p.body.checks['metadata_store']?.error).toBeTruthy();
    expect(p.body.checks['blob_store:region-a']?.status).toBe('up');
    expect(await grpcHealth(pub.grpcAddress)).toBe('NOT_SERVING');
    expect(await grpcHealth(pub.grpcAddress, 'quire.v1.PublishService')).toBe('NOT_SERVING');

    const c = await readyz(con.httpUrl);
    expect(c.status).toBe(200);
    expect(c.body).toMatchObject({ ready: true, status: 'degraded' });
    expect(c.body.checks['metadata_store']?.status).toBe('degraded');
    expect(c.body.checks['cache']?.status).toBe('up');
    expect(await grpcHealth(con.grpcAddress)).toBe('SERVING');

    const s = await readyzUntil(strict.httpUrl, (r) => r.status === 503, 'the strict consume service to be not ready');
    expect(s.body.checks['cache']?.status).toBe('down');
    expect(s.body.checks['metadata_store']?.status).toBe('down');

    for (const app of [pub, con]) {
      const m = await scrape(app.httpUrl);
      expect(metricValue(m, 'quire_metadata_store_errors_total', { adapter: 'cassandra' })).toBeGreaterThan(0);
      expect(metricValue(m, 'quire_readiness_check', { check: 'metadata_store' })).toBe(app === pub ? 0 : 0.5);
    }
    expect(metricValue(await scrape(pub.httpUrl), 'quire_ready')).toBe(0);
  });

  it('store back: ready again', async () => {
    await cassandraProxy.restore();
    for (const app of [pub, con, strict]) {
      const r = await readyzUntil(app.httpUrl, (x) => x.status === 200 && x.body.status === 'ready', 'ready again');
      expect(r.body.checks['metadata_store']?.status).toBe('up');
    }
    expect(await grpcHealth(pub.grpcAddress)).toBe('SERVING');
  });

  it('an S3 region down: neither service is ready', async () => {
    await s3Proxy.cut();
    for (const app of [pub, con]) {
      const r = await readyzUntil(app.httpUrl, (x) => x.status === 503, 'not ready without region-a');
      expect(r.body.checks['blob_store:region-a']?.status).toBe('down');
      expect(r.body.checks['blob_store:region-b']?.status).toBe('up');
      expect(r.body.checks['metadata_store']?.status).toBe('up');
      expect(await grpcHealth(app.grpcAddress)).toBe('NOT_SERVING');
    }
    const m = await scrape(pub.httpUrl);
    expect(metricValue(m, 'quire_blob_store_errors_total', { adapter: 's3', operation: 'head' }) ?? 0).toBeGreaterThan(0);
    await s3Proxy.restore();
    await readyzUntil(pub.httpUrl, (x) => x.status === 200, 'ready with region-a back');
  });
});
