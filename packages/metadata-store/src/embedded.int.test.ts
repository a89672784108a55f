import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@quire/core';
import type { Lease, MetadataStore } from '@quire/core';
import { describeMetadataStoreContract } from './contract.ts';
import type { MakeStoreOptions } from './contract.ts';
import { expectQuireError } from './contract/fixtures.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './embedded/migrations.ts';
import { createEmbeddedMetadataStore } from './embedded/store.ts';
import type { EmbeddedMetadataStoreOptions } from './embedded/store.ts';

describeMetadataStoreContract('embedded', async (opts?: MakeStoreOptions) => {
  const dir = await mkdtemp(join(tmpdir(), 'quire-metadata-'));
  const path = join(dir, 'quire.db');
  const opened: MetadataStore[] = [];
  const open = async (o?: MakeStoreOptions): Promise<MetadataStore> => {
    const store = createEmbeddedMetadataStore({ path, ...(o?.faults ? { faults: o.faults } : {}) });
    opened.push(store);
    await store.migrate();
    return store;
  };
  const store = await open(opts);
  return {
    store,
    reopen: open,
    async cleanup() {
      // close() is idempotent: instances the suite closed already are no-ops.
      await Promise.all(opened.map((s) => s.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** Behaviour specific to the SQLite file: several processes, lock waits, opening, schema. */
describe('embedded store [sqlite file]', () => {
  let dir: string;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quire-metadata-embedded-'));
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
    await rm(dir, { recursive: true, force: true });
  });

  async function openStore(name: string, options: Partial<EmbeddedMetadataStoreOptions> = {}): Promise<MetadataStore> {
    const store = createEmbeddedMetadataStore({ path: join(dir, name), ...options });
    cleanups.push(() => store.close());
    await store.migrate();
    return store;
  }

  const topic = (name: string) => ({
    name,
    owner: 'team',
    description: '',
    retention: {},
    inlineThresholdBytes: 1024,
    createdAt: 1,
    updatedAt: 1,
    revision: 0,
  });
  const version = (t: string, publishId: string) => ({
    topic: t,
    publishId,
    createdAt: 1,
    publisher: 'p',
    metadata: {},
    contentType: 'text/plain',
    size: 1,
    sha256: '0'.repeat(64),
    pointer: { kind: 's3' as const, locations: [{ region: 'local', bucket: 'b', key: `k/${publishId}` }] },
  });

  it('several processes sharing the file allocate versions 1..N once each, and one of them holds the lease', { timeout: 60_000 }, async () => {
    const store = await openStore('multi.db');
    await store.createTopic(topic('multi.process'));
    const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
    const fixture = fileURLToPath(new URL('./embedded/multiprocess.fixture.ts', import.meta.url));
    const processes = 4;
    const perProcess = 100;
    const children = Array.from({ length: processes }, (_, i) =>
      spawn(process.execPath, ['--import', 'tsx', fixture, join(dir, 'multi.db'), 'multi.process', String(perProcess), 'scheduler', `proc-${i}`], {
        cwd: repoRoot,
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    const outputs = children.map((child) => {
      const lines = createInterface({ input: child.stdout! });
      const ready = new Promise<void>((resolve) => lines.once('line', () => resolve()));
      const result = new Promise<string>((resolve, reject) => {
        let last = '';
        lines.on('line', (l) => (last = l));
        child.on('exit', (code) => (code === 0 ? resolve(last) : reject(new Error(`worker exited with ${code}`))));
      });
      return { ready, result };
    });
    await Promise.all(outputs.map((o) => o.ready));
    const startAt = Date.now() + 300;
    for (const child of children) child.stdin!.write(`${startAt}\n`);
    const results = (await Promise.all(outputs.map((o) => o.result))).map(
      (l) => JSON.parse(l) as { committed: [string, number][]; lease: Lease | null },
    );

    const committed = new Map(results.flatMap((r) => r.committed));
    expect(committed.size).toBe(processes * perProcess);
    const all: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listVersions('multi.process', { order: 'asc', limit: 1000, cursor });
      for (const v of page.items) {
        expect(committed.get(v.publishId)).toBe(v.version);
        all.push(v.version);
      }
      cursor = page.next;
    } while (cursor !== undefined);
    expect(all).toEqual(Array.from({ length: processes * perProcess }, (_, i) => i + 1));
    const holders = results.filter((r) => r.lease !== null);
    expect(holders).toHaveLength(1);
    expect((await store.getLease('scheduler'))?.owner).toBe(holders[0]!.lease!.owner);
  });

  it('a writer that waits past busy_timeout gets UNAVAILABLE and writes nothing; readers are not blocked', async () => {
    const store = await openStore('busy.db', { busyTimeoutMs: 50 });
    await store.createTopic(topic('busy.topic'));
    const blocker = new Database(join(dir, 'busy.db'));
    cleanups.push(async () => void blocker.close());
    blocker.exec('BEGIN IMMEDIATE');
    blocker.prepare("UPDATE topics SET description = 'uncommitted' WHERE name = 'busy.topic'").run();
    await expectQuireError(store.commitVersion(version('busy.topic', 'p1')), Code.UNAVAILABLE);
    await expectQuireError(store.tryAcquireLease('l', 'o', 1000), Code.UNAVAILABLE);
    // WAL: reads go on while the writer holds the lock, and see only committed data.
    expect((await store.getTopic('busy.topic'))?.description).toBe('');
    expect(await store.headVersion('busy.topic')).toBe(0);
    blocker.exec('ROLLBACK');
    expect((await store.commitVersion(version('busy.topic', 'p1'))).version).toBe(1);
  });

  it('refuses :memory: and reports a missing directory as UNAVAILABLE', () => {
    expect(() => createEmbeddedMetadataStore({ path: ':memory:' })).toThrow(expect.objectContaining({ code: Code.INVALID_ARGUMENT, field: 'path' }));
    expect(() => createEmbeddedMetadataStore({ path: join(dir, 'no', 'such', 'dir', 'x.db') })).toThrow(
      expect.objectContaining({ code: Code.UNAVAILABLE, field: 'path' }),
    );
  });

  it('records each migration once and refuses a database migrated by a newer build', async () => {
    const store = await openStore('schema.db');
    await store.migrate();
    const raw = new Database(join(dir, 'schema.db'));
    cleanups.push(async () => void raw.close());
    const steps = raw.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
    expect(steps.map((s) => s.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(SCHEMA_VERSION + 1, 'from the future', 1);
    await expectQuireError(store.migrate(), Code.FAILED_PRECONDITION);
  });

  it('migration 5 adds state stamps and gives every existing topic one', async () => {
    const store = await openStore('stamps.db');
    await store.createTopic(topic('old.a'));
    await store.createTopic(topic('old.b'));
    await store.close();
    // Back to schema 4: no stamp column.
    const raw = new Database(join(dir, 'stamps.db'));
    raw.exec('ALTER TABLE topics DROP COLUMN stamp; DELETE FROM schema_migrations WHERE version = 5');
    raw.close();
    const again = await openStore('stamps.db');
    const items = (await again.listTopicStamps({ limit: 10 })).items;
    expect(items.map((s) => s.name)).toEqual(['old.a', 'old.b']);
    for (const s of items) expect(s.stamp).toMatch(/^[0-9a-f]{16}$/);
    expect(items[0]!.stamp).not.toBe(items[1]!.stamp);
  });

  it('a closed store refuses calls with FAILED_PRECONDITION; close is idempotent', async () => {
    const store = await openStore('closed.db');
    await store.close();
    await store.close();
    await expectQuireError(store.getTopic('a.b'), Code.FAILED_PRECONDITION);
  });
});
