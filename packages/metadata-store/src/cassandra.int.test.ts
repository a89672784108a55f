// The Cassandra adapter against a real Cassandra 5 node (vitest global setup): the shared
// MetadataStore contract, then what only this adapter has (versioned migrations, driver
// error translation). One keyspace per describe block (SimpleStrategy RF 1), dropped after.
import cassandra from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { Code } from '@quire/core';
import type { Lease, MetadataStore, NewVersion, RolloutRun } from '@quire/core';
import { uniqueKeyspace } from '@quire/test-servers';
import { createCassandraMetadataStore } from './cassandra/store.ts';
import type { CassandraMetadataStoreOptions } from './cassandra/store.ts';
import { Db } from './cassandra/db.ts';
import { MIGRATIONS } from './cassandra/migrations.ts';
import { describeMetadataStoreContract } from './contract.ts';
import type { MakeStoreOptions } from './contract.ts';
import { expectQuireError } from './contract/fixtures.ts';

const { cassandra: server } = inject('quireServers');

function options(keyspace: string, extra: Partial<CassandraMetadataStoreOptions> = {}): CassandraMetadataStoreOptions {
  return {
    contactPoints: server.contactPoints,
    localDataCenter: server.localDataCenter,
    port: server.port,
    keyspace,
    replication: { class: 'SimpleStrategy', replicationFactor: 1 },
    ...extra,
  };
}

/** A plain driver session for checks and cleanup (the store's own is private). */
function adminClient(): cassandra.Client {
  return new cassandra.Client({
    contactPoints: server.contactPoints,
    localDataCenter: server.localDataCenter,
    protocolOptions: { port: server.port },
    queryOptions: { consistency: cassandra.types.consistencies.localQuorum },
  });
}

async function dropKeyspace(keyspace: string): Promise<void> {
  const admin = adminClient();
  try {
    await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  } finally {
    await admin.shutdown();
  }
}

describeMetadataStoreContract('cassandra', async (opts?: MakeStoreOptions) => {
  const keyspace = uniqueKeyspace('contract');
  const opened: MetadataStore[] = [];
  const open = async (o?: MakeStoreOptions): Promise<MetadataStore> => {
    const store = createCassandraMetadataStore(options(keyspace, o?.faults ? { faults: o.faults } : {}));
    opened.push(store);
    await store.migrate();
    return store;
  };
  const store = await open(opts);
  return {
    store,
    reopen: open,
    async cleanup() {
      await Promise.all(opened.map((s) => s.close()));
      await dropKeyspace(keyspace);
    },
  };
});

describe('cassandra store [migrations and driver errors]', () => {
  const keyspace = uniqueKeyspace('migrations');
  const opened: MetadataStore[] = [];
  const open = (extra: Partial<CassandraMetadataStoreOptions> = {}): MetadataStore => {
    const store = createCassandraMetadataStore(options(keyspace, extra));
    opened.push(store);
    return store;
  };
  let admin: cassandra.Client;

  beforeAll(() => {
    admin = adminClient();
  });
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await admin.shutdown();
  });

  it('three processes migrating a new keyspace at once apply each migration once', async () => {
    await Promise.all([open().migrate(), open().migrate(), open().migrate()]);
    const rows = (await admin.execute(`SELECT id, name FROM ${keyspace}.schema_migrations`)).rows;
    expect(rows.map((r) => r['id'] as number).sort((a, b) => a - b)).toEqual(MIGRATIONS.map((m) => m.id));
    // Idempotent, and a no-op once applied.
    const store = open();
    await store.migrate();
    await store.migrate();
    expect((await admin.execute(`SELECT id FROM ${keyspace}.schema_migrations`)).rows).toHaveLength(MIGRATIONS.length);
    const lock = await admin.execute(`SELECT owner FROM ${keyspace}.schema_migration_lock`);
    expect(lock.rows).toHaveLength(0);
  });

  it('migration 6 gives topics written before state stamps one, and keeps existing stamps', async () => {
    const store = open();
    await store.migrate();
    const now = Date.now();
    const topic = (name: string) => ({ name, owner: 'o', description: '', retention: {}, inlineThresholdBytes: 1024, createdAt: now, updatedAt: now, revision: 1 });
    await store.createTopic(topic('old.unstamped'));
    await store.createTopic(topic('old.stamped'));
    // As before migration 6: no stamp on the first topic, the migration not recorded.
    await admin.execute(`DELETE stamp FROM ${keyspace}.topic_names WHERE bucket = 0 AND name = ?`, ['old.unstamped'], { prepare: true });
    const stamps = async () => new Map((await store.listTopicStamps({ limit: 100 })).items.map((s) => [s.name, s.stamp]));
    const before = await stamps();
    expect(before.get('old.unstamped')).toBeUndefined();
    expect(before.get('old.stamped')).toMatch(/^[0-9a-f]{16}$/);
    await admin.execute(`DELETE FROM ${keyspace}.schema_migrations WHERE id = 6 IF EXISTS`);
    await open().migrate();
    const after = await stamps();
    expect(after.get('old.unstamped')).toMatch(/^[0-9a-f]{16}$/);
    expect(after.get('old.stamped')).toBe(before.get('old.stamped'));
    expect((await admin.execute(`SELECT id FROM ${keyspace}.schema_migrations WHERE id = 6`)).rows).toHaveLength(1);
  });

  it('refuses a keyspace migrated by a newer build', async () => {
    await admin.execute(
      `INSERT INTO ${keyspace}.schema_migrations (id, name, checksum, applied_at) VALUES (?, 'from the future', 'x', ?) IF NOT EXISTS`,
      [10_000, new Date()],
      { prepare: true },
    );
    try {
      await expectQuireError(open().migrate(), Code.FAILED_PRECONDITION);
    } finally {
      await admin.execute(`DELETE FROM ${keyspace}.schema_migrations WHERE id = ? IF EXISTS`, [10_000], { prepare: true });
    }
  });

  it('a closed store refuses calls with FAILED_PRECONDITION; close is idempotent', async () => {
    const store = open();
    await store.migrate();
    await store.close();
    await store.close();
    await expectQuireError(store.getTopic('a.b'), Code.FAILED_PRECONDITION);
  });

  it('an unreachable cluster is UNAVAILABLE (driver NoHostAvailableError, cause kept)', async () => {
    const store = open({ contactPoints: ['127.0.0.1'], port: 1 });
    const err = await expectQuireError(store.getTopic('a.b'), Code.UNAVAILABLE);
    expect(err.cause).toBeInstanceOf(cassandra.errors.NoHostAvailableError);
  });

  it('a missing keyspace (not migrated) is INTERNAL, cause kept', async () => {
    const store = open({ keyspace: uniqueKeyspace('never_migrated') });
    const err = await expectQuireError(store.getTopic('a.b'), Code.INTERNAL);
    expect(err.cause).toBeInstanceOf(cassandra.errors.ResponseError);
  });

  it('refuses bad options with INVALID_ARGUMENT naming the field', () => {
    const bad = (extra: Partial<CassandraMetadataStoreOptions>, field: string): void => {
      expect(() => createCassandraMetadataStore(options(keyspace, extra))).toThrow(
        expect.objectContaining({ code: Code.INVALID_ARGUMENT, field }),
      );
    };
    bad({ keyspace: 'Bad-Name' }, 'keyspace');
    bad({ contactPoints: [] }, 'contactPoints');
    bad({ port: 70_000 }, 'port');
    bad({ consistency: 'ALL' as never }, 'consistency');
    bad({ replication: { class: 'SimpleStrategy', replicationFactor: 0 } }, 'replication.replicationFactor');
  });
});

describe('cassandra store [unknown LWT outcomes]', () => {
  const keyspace = uniqueKeyspace('unknown');
  const stores: MetadataStore[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 4; i++) stores.push(createCassandraMetadataStore(options(keyspace)));
    for (const s of stores) await s.migrate();
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await Promise.all(stores.map((s) => s.close()));
    await dropKeyspace(keyspace);
  });

  it('stay correct when a fifth of all conditional writes time out (before or after being applied)', { timeout: 60_000 }, async () => {
    const [first] = stores as [MetadataStore];
    const topic = 'chaos.topic';
    await first.createTopic({ name: topic, owner: 'o', description: '', retention: {}, inlineThresholdBytes: 0, createdAt: 1, updatedAt: 1, revision: 0 });
    // Real LWTs against the real node; the driver-shaped failure is raised around them:
    // 10 % before sending (never applied), 10 % after the server answered (applied or not).
    const send = Db.prototype.cas;
    const RC = cassandra.types.responseErrorCodes;
    vi.spyOn(Db.prototype, 'cas').mockImplementation(async function (this: Db, cql, params) {
      const dice = Math.random();
      if (dice < 0.1) throw new cassandra.errors.OperationTimedOutError('injected: timed out before sending', '127.0.0.1:9042');
      const rs = await send.call(this, cql, params);
      if (dice < 0.2) throw Object.assign(new cassandra.errors.ResponseError(RC.writeTimeout, 'injected: CAS timeout'), { writeType: 'CAS' });
      return rs;
    });

    const version = (publishId: string): NewVersion => ({
      topic,
      publishId,
      createdAt: 1,
      publisher: 'p',
      metadata: {},
      contentType: 'text/plain',
      size: 1,
      sha256: '0'.repeat(64),
      pointer: { kind: 's3', locations: [{ region: 'r', bucket: 'b', key: `k/${publishId}` }] },
    });
    const got = new Map<string, number>();
    await Promise.all(
      stores.map(async (s, w) => {
        for (let i = 0; i < 25; i++) got.set(`p${w}-${i}`, (await s.commitVersion(version(`p${w}-${i}`))).version);
      }),
    );

    for (let round = 0; round < 10; round++) {
      const run: RolloutRun = {
        topic,
        runId: `run-${round}`,
        version: 1,
        plan: { stages: [{ scope: {}, bakeMs: 0 }] },
        status: 'running',
        stageIndex: -1,
        stageReleasedAt: 1,
        createdAt: 1,
        updatedAt: 1,
        startedBy: 'x',
        revision: 0,
      };
      await first.createRun(run);
      const won = await Promise.all(stores.map((s, i) => s.updateRun({ ...run, startedBy: `w${i}`, revision: 1 }, 0)));
      expect(won.filter(Boolean), `run round ${round}`).toHaveLength(1);
    }

    let lastEpoch = 0;
    for (let round = 0; round < 10; round++) {
      const leases = (await Promise.all(stores.map((s, i) => s.tryAcquireLease('chaos-lease', `o${i}`, 60_000)))).filter(
        (l): l is Lease => l !== undefined,
      );
      expect(leases.length, `lease round ${round}`).toBeLessThanOrEqual(1);
      if (leases[0] === undefined) continue;
      expect(leases[0].epoch).toBeGreaterThan(lastEpoch);
      lastEpoch = leases[0].epoch;
      await first.releaseLease(leases[0]);
    }
    vi.restoreAllMocks();

    const all = (await first.listVersions(topic, { order: 'asc', limit: 1000 })).items;
    expect(all.map((v) => v.version)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (const v of all) expect(got.get(v.publishId)).toBe(v.version);
    expect(new Set(got.values()).size).toBe(100);
  });
});
