// Test keyspaces pile up on a Cassandra that outlives test runs (each holds ~20 tables of
// schema in the heap): past a cap, the global setup drops the old ones before a run.
import cassandra from 'cassandra-driver';
import type { CassandraInfo } from './index.ts';

const SYSTEM = /^system(_.*)?$/;

/** Drops every non-system keyspace when there are more than `cap`; returns how many it dropped. */
export async function pruneTestKeyspaces(info: CassandraInfo, cap = 40): Promise<number> {
  const client = new cassandra.Client({
    contactPoints: info.contactPoints,
    localDataCenter: info.localDataCenter,
    protocolOptions: { port: info.port },
  });
  try {
    const rs = await client.execute('SELECT keyspace_name FROM system_schema.keyspaces');
    const names = rs.rows.map((r) => r['keyspace_name'] as string).filter((n) => !SYSTEM.test(n));
    if (names.length <= cap) return 0;
    for (const name of names) await client.execute(`DROP KEYSPACE IF EXISTS "${name}"`);
    return names.length;
  } finally {
    await client.shutdown();
  }
}

/** Drop one keyspace (a test's own, at its end), so the shared node's heap does not fill with old schemas. */
export async function dropKeyspace(info: CassandraInfo, keyspace: string): Promise<void> {
  if (SYSTEM.test(keyspace)) throw new Error(`refusing to drop system keyspace ${keyspace}`);
  const client = new cassandra.Client({
    contactPoints: info.contactPoints,
    localDataCenter: info.localDataCenter,
    protocolOptions: { port: info.port },
  });
  try {
    await client.execute(`DROP KEYSPACE IF EXISTS "${keyspace}"`);
  } finally {
    await client.shutdown();
  }
}
