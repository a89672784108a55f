/**
 * Applies `MIGRATIONS` to a keyspace: creates the keyspace when absent, then runs each
 * pending migration once, in order, under a migration lease (an LWT row with a TTL) so
 * two processes migrating at once take turns, waiting for schema agreement after each
 * schema change and recording each applied migration in `schema_migrations`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type cassandra from 'cassandra-driver';
import { Code, QuireError } from '@quire/core';
import { sleep } from './db.ts';
import { isUnknownWriteOutcome } from './errors.ts';
import { MIGRATIONS, type Migration } from './migrations.ts';

export type Replication =
  | { class: 'SimpleStrategy'; replicationFactor: number }
  | { class: 'NetworkTopologyStrategy'; dataCenters: Record<string, number> };

export interface MigrateContext {
  client: cassandra.Client;
  keyspace: string;
  replication: Replication;
  /** Numeric driver consistencies. */
  consistency: number;
  serialConsistency: number;
}

/** How long a migration lease lives without renewal (a crashed migrator frees it after this). */
const LOCK_TTL_S = 60;
const LOCK_WAIT_MS = 120_000;
const SCHEMA_AGREEMENT_WAIT_MS = 30_000;

export function replicationCql(r: Replication): string {
  if (r.class === 'SimpleStrategy') {
    return `{'class': 'SimpleStrategy', 'replication_factor': ${r.replicationFactor}}`;
  }
  const dcs = Object.entries(r.dataCenters).map(([dc, n]) => `'${dc}': ${n}`);
  return `{'class': 'NetworkTopologyStrategy', ${dcs.join(', ')}}`;
}

function checksum(m: Migration): string {
  return createHash('sha256').update(m.statements.join('\n;\n')).digest('hex').slice(0, 16);
}

export async function migrate(ctx: MigrateContext): Promise<void> {
  const { client, keyspace: ks } = ctx;
  const ddl = { consistency: ctx.consistency };
  const read = { prepare: true, consistency: ctx.consistency, isIdempotent: true };
  const cas = { prepare: true, consistency: ctx.consistency, serialConsistency: ctx.serialConsistency };

  await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = ${replicationCql(ctx.replication)}`, [], ddl);
  await client.execute(
    `CREATE TABLE IF NOT EXISTS ${ks}.schema_migrations (id int PRIMARY KEY, name text, checksum text, applied_at timestamp)`,
    [],
    ddl,
  );
  await client.execute(`CREATE TABLE IF NOT EXISTS ${ks}.schema_migration_lock (name text PRIMARY KEY, owner text)`, [], ddl);
  await awaitSchemaAgreement(client);

  const applied = async (): Promise<Map<number, string>> => {
    const rs = await client.execute(`SELECT id, checksum FROM ${ks}.schema_migrations`, [], read);
    return new Map(rs.rows.map((r) => [r['id'] as number, r['checksum'] as string]));
  };
  const known = new Set(MIGRATIONS.map((m) => m.id));
  const pending = (done: Map<number, string>): Migration[] => {
    const unknown = [...done.keys()].filter((id) => !known.has(id));
    if (unknown.length > 0) {
      throw new QuireError(
        Code.FAILED_PRECONDITION,
        `cassandra: keyspace ${ks} has migration(s) ${unknown.sort((a, b) => a - b).join(', ')} that this build does not know (migrated by a newer build); upgrade Quire`,
      );
    }
    for (const m of MIGRATIONS) {
      const sum = done.get(m.id);
      if (sum !== undefined && sum !== checksum(m)) {
        throw new QuireError(
          Code.FAILED_PRECONDITION,
          `cassandra: migration ${m.id} (${m.name}) was changed after it was applied to keyspace ${ks}; add a new migration instead`,
        );
      }
    }
    return MIGRATIONS.filter((m) => !done.has(m.id));
  };

  if (pending(await applied()).length === 0) return;

  const owner = randomUUID();
  const lockCql = `INSERT INTO ${ks}.schema_migration_lock (name, owner) VALUES ('migrate', ?) IF NOT EXISTS USING TTL ${LOCK_TTL_S}`;
  const renewCql = `UPDATE ${ks}.schema_migration_lock USING TTL ${LOCK_TTL_S} SET owner = ? WHERE name = 'migrate' IF owner = ?`;
  const unlockCql = `DELETE FROM ${ks}.schema_migration_lock WHERE name = 'migrate' IF owner = ?`;
  const holder = async (): Promise<string | undefined> => {
    const rs = await client.execute(`SELECT owner FROM ${ks}.schema_migration_lock WHERE name = 'migrate'`, [], {
      ...read,
      consistency: ctx.serialConsistency,
    });
    return (rs.first()?.['owner'] as string | null | undefined) ?? undefined;
  };
  const tryLock = async (): Promise<boolean> => {
    try {
      return (await client.execute(lockCql, [owner], cas)).wasApplied();
    } catch (err) {
      if (!isUnknownWriteOutcome(err)) throw err;
      return (await holder()) === owner;
    }
  };

  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    if (await tryLock()) break;
    // Someone else is migrating: wait for them, then see what is left.
    if (Date.now() > deadline) {
      throw new QuireError(Code.UNAVAILABLE, `cassandra: waited ${LOCK_WAIT_MS} ms for another process to finish migrating keyspace ${ks}`);
    }
    await sleep(200 + Math.random() * 200);
    if (pending(await applied()).length === 0) return;
  }

  try {
    for (const m of pending(await applied())) {
      for (const stmt of m.statements) {
        await client.execute(stmt.replaceAll('{ks}', ks), [], ddl);
      }
      await awaitSchemaAgreement(client);
      if (m.backfill !== undefined) await m.backfill(client, ks, ctx.consistency);
      await client.execute(
        `INSERT INTO ${ks}.schema_migrations (id, name, checksum, applied_at) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
        [m.id, m.name, checksum(m), new Date()],
        cas,
      );
      // Still ours? (A stalled migrator whose lease ran out stops here; the statements
      // are IF NOT EXISTS, so whoever took over repeats nothing harmful.)
      if (!(await client.execute(renewCql, [owner, owner], cas)).wasApplied()) {
        throw new QuireError(Code.ABORTED, `cassandra: lost the migration lease of keyspace ${ks} after migration ${m.id}`);
      }
    }
  } finally {
    await client.execute(unlockCql, [owner], cas).catch(() => undefined); // expires by itself otherwise
  }
}

/** Poll the driver's schema-agreement check until every live node reports one schema version. */
export async function awaitSchemaAgreement(client: cassandra.Client, timeoutMs = SCHEMA_AGREEMENT_WAIT_MS): Promise<void> {
  const md = client.metadata as unknown as { checkSchemaAgreement(): Promise<boolean> };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await md.checkSchemaAgreement()) return;
    if (Date.now() > deadline) {
      throw new QuireError(Code.UNAVAILABLE, `cassandra: nodes did not agree on the schema within ${timeoutMs} ms`);
    }
    await sleep(100);
  }
}
