// Vitest global setup for the integration project: starts (or reuses) the real servers once for the
// whole run, provides their coordinates as `quireServers`, and stops at the end what it started.
// In a test: `import { inject } from 'vitest'; const { cassandra, s3 } = inject('quireServers');`
import type { TestProject } from 'vitest/node';
import {
  ensureCassandra,
  ensureS3Regions,
  type CassandraServer,
  type QuireServers,
  type S3Regions,
} from './index.ts';
import { pruneTestKeyspaces } from './keyspaces.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    quireServers: QuireServers;
  }
}

function keepServers(): boolean {
  const v = process.env['QUIRE_TEST_KEEP_SERVERS'];
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  const [c, s] = await Promise.allSettled([ensureCassandra(), ensureS3Regions()]);
  if (c.status === 'rejected' || s.status === 'rejected') {
    // Never leave half a setup behind, never skip: stop what did start, then fail the run.
    if (c.status === 'fulfilled') await c.value.stop().catch(() => {});
    if (s.status === 'fulfilled') await s.value.stop().catch(() => {});
    const errors = [c, s].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    throw new AggregateError(
      errors.map((r) => r.reason as unknown),
      `Quire test servers could not be started:\n${errors.map((r) => String((r.reason as Error)?.message ?? r.reason)).join('\n\n')}`,
    );
  }
  const cassandra: CassandraServer = c.value;
  const s3: S3Regions = s.value;
  const servers: QuireServers = {
    cassandra: {
      contactPoints: cassandra.contactPoints,
      localDataCenter: cassandra.localDataCenter,
      port: cassandra.port,
    },
    s3: { regions: s3.regions },
  };
  // Only on our own test node: a Cassandra named by QUIRE_TEST_CASSANDRA is left alone.
  if (process.env['QUIRE_TEST_CASSANDRA'] === undefined) {
    const dropped = await pruneTestKeyspaces(servers.cassandra);
    if (dropped > 0) console.log(`[test-servers] dropped ${dropped} keyspaces left by earlier runs`);
  }
  project.provide('quireServers', servers);
  console.log(
    `[test-servers] ready in ${((Date.now() - t0) / 1000).toFixed(1)}s: cassandra ${servers.cassandra.contactPoints.join(',')}:${servers.cassandra.port} (${servers.cassandra.localDataCenter}); s3 ${servers.s3.regions.map((r) => `${r.name}=${r.endpoint}`).join(' ')}`,
  );
  return async () => {
    if (keepServers()) {
      console.log('[test-servers] QUIRE_TEST_KEEP_SERVERS set: leaving the servers running');
      return;
    }
    await Promise.all([cassandra.stop(), s3.stop()]);
  };
}
