/**
 * The embedded MetadataStore: one SQLite file (better-sqlite3) that several processes on
 * one machine open at once (the publish service, the consume service, the CLI).
 *
 * - WAL mode: readers never block the writer, and a writer never blocks readers.
 * - Every read-modify-write runs in a `BEGIN IMMEDIATE` transaction, which takes the
 *   file's single write lock up front (waiting up to `busy_timeout`), so two connections
 *   never interleave a read and a write: version allocation is `MAX(version) + 1` inside
 *   such a transaction, and compare-and-set updates and leases are plain transactions.
 *   A lock still held after the timeout → UNAVAILABLE, nothing written.
 * - better-sqlite3 is synchronous: every method runs to completion before returning its
 *   promise, which is fine for a store whose statements take microseconds.
 * - The change feed is an AUTOINCREMENT table; writers are serialised, so ids appear in
 *   commit order and the cursor (the last id seen) delivers each change exactly once
 *   (the port only promises at-least-once). Changes older than `changeRetentionMs` are
 *   pruned; a cursor older than that misses them (callers also refresh periodically).
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { Code, QuireError, systemClock } from '@quire/core';
import type {
  ApiToken,
  AuditEntry,
  AuditQuery,
  Change,
  Clock,
  FleetReport,
  Lease,
  ListVersionsRequest,
  MetadataStore,
  NewVersion,
  Page,
  PageRequest,
  Pin,
  Release,
  RolloutRun,
  Topic,
  TopicStamp,
  VersionRecord,
} from '@quire/core';
import type { MetadataStoreFaults } from '../faults.ts';
import {
  decodeCursor,
  encodeCursor,
  guardAuditEntry,
  guardAuditQuery,
  guardFleetReports,
  guardId,
  guardLease,
  guardLeaseRequest,
  guardListVersions,
  guardNewVersion,
  guardOptionalTime,
  guardPage,
  guardPin,
  guardRelease,
  guardRevision,
  guardRun,
  guardRunUpdate,
  guardScopeKey,
  guardTime,
  guardTopic,
  guardTopicName,
  guardTtl,
  guardVersion,
  guardVersionList,
} from '../guard.ts';
import { applyMigrations, SCHEMA_VERSION } from './migrations.ts';
import {
  auditFromRow,
  fleetFromRow,
  leaseFromRow,
  pinFromRow,
  releaseFromRow,
  runFromRow,
  runToRow,
  topicFromRow,
  topicToRow,
  versionFromRow,
} from './rows.ts';
import type { AuditRow, FleetRow, LeaseRow, PinRow, ReleaseRow, RunRow, TopicRow, VersionRow } from './rows.ts';
import { fromSqliteError } from './sqlite-errors.ts';
import { guardToken, guardTokenId, revoked, tokenFromJson, tokenToJson } from '../tokens.ts';

export interface EmbeddedMetadataStoreOptions {
  /**
   * Path of the SQLite file, created if missing. Every process that opens the same path
   * shares the store. `:memory:` is refused (other connections could not see it).
   */
  path: string;
  /** Test-only fault injection (see MetadataStoreFaults). */
  faults?: MetadataStoreFaults;
  /** Time source for lease expiry and change times (default: the system clock). */
  clock?: Clock;
  /** How long a writer waits for another connection's write lock before UNAVAILABLE (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * `full` (default): every commit is fsynced, so a committed version survives a power
   * loss. `normal`: faster, but a power loss may undo the last commits (and a version
   * number could then be handed out twice).
   */
  synchronous?: 'full' | 'normal';
  /** How long recorded changes are kept for changesSince (default one day). */
  changeRetentionMs?: number;
}

const DEFAULTS = { busyTimeoutMs: 5000, synchronous: 'full', changeRetentionMs: 24 * 3600 * 1000 } as const;
/** At most this many changes per changesSince call; the next call continues from the cursor. */
const CHANGES_PER_CALL = 1000;
/** Prune the change feed once per this many changes recorded by an instance. */
const PRUNE_EVERY = 500;
/** Attempts of a commit whose outcome was unknown and turned out not applied. */
const COMMIT_ATTEMPTS = 3;

/** A COMMIT whose result we could not observe: it may or may not have been applied. */
class OutcomeUnknown extends Error {
  override readonly name = 'OutcomeUnknown';
}

export function createEmbeddedMetadataStore(options: EmbeddedMetadataStoreOptions): MetadataStore {
  return new EmbeddedMetadataStore(options);
}

const isTopicCursor = (c: Record<string, unknown>): c is { n: string } => typeof c.n === 'string';
const isVersionCursor = (c: Record<string, unknown>): c is { v: number; o: string } =>
  Number.isSafeInteger(c.v) && (c.o === 'asc' || c.o === 'desc');
const isChangeCursor = (c: Record<string, unknown>): c is { c: number } => Number.isSafeInteger(c.c) && (c.c as number) >= 0;
const isAuditCursor = (c: Record<string, unknown>): c is { a: number; i: string } =>
  Number.isSafeInteger(c.a) && typeof c.i === 'string';

class EmbeddedMetadataStore implements MetadataStore {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly faults: MetadataStoreFaults;
  private readonly changeRetentionMs: number;
  private readonly statements = new Map<string, Database.Statement>();
  private changesSincePrune = 0;
  private closed = false;

  constructor(options: EmbeddedMetadataStoreOptions) {
    const path = options.path;
    if (typeof path !== 'string' || path === '' || path === ':memory:' || path.startsWith('file::memory:')) {
      throw QuireError.invalid('path', 'must be the path of a database file (":memory:" cannot be shared between connections)');
    }
    this.clock = options.clock ?? systemClock;
    this.faults = { ...options.faults };
    this.changeRetentionMs = options.changeRetentionMs ?? DEFAULTS.changeRetentionMs;
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs;
    const synchronous = options.synchronous ?? DEFAULTS.synchronous;
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      // busy_timeout first, so the journal-mode switch below waits for other connections too.
      db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new QuireError(Code.FAILED_PRECONDITION, `embedded metadata store: ${path} cannot use WAL mode (got ${String(mode)})`);
      db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    } catch (err) {
      db?.close();
      if (err instanceof QuireError) throw err;
      // Opening fails with a plain TypeError when the directory is missing.
      const e = fromSqliteError(err);
      throw new QuireError(e.code === Code.INTERNAL ? Code.UNAVAILABLE : e.code, `embedded metadata store: cannot open ${path}: ${e.message}`, {
        field: 'path',
        cause: err,
      });
    }
    this.db = db;
  }

  // ---- plumbing ----------------------------------------------------------------

  /** Run a synchronous body as the async method's result, translating every error. */
  private call<T>(body: () => T): Promise<T> {
    try {
      if (this.closed) throw new QuireError(Code.FAILED_PRECONDITION, 'embedded metadata store is closed');
      return Promise.resolve(body());
    } catch (err) {
      if (err instanceof OutcomeUnknown) {
        return Promise.reject(new QuireError(Code.UNAVAILABLE, `embedded metadata store: ${err.message}`, { cause: err }));
      }
      return Promise.reject(fromSqliteError(err));
    }
  }

  private q(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Run `body` in a BEGIN IMMEDIATE transaction. A failed COMMIT that leaves the
   * transaction open was not applied (rolled back, error rethrown); one that closed it
   * has an unknown outcome (OutcomeUnknown). `fault` injects such an outcome.
   */
  private write<T>(body: () => T, fault?: MetadataStoreFaults['commitOutcomeUnknown']): T {
    this.db.exec('BEGIN IMMEDIATE');
    let result: T;
    try {
      result = body();
      if (fault === 'not-applied') throw new OutcomeUnknown('commit outcome unknown (injected fault: not applied)');
    } catch (err) {
      this.rollback();
      throw err;
    }
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) {
        this.rollback();
        throw err;
      }
      throw new OutcomeUnknown(`commit outcome unknown: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (fault === 'applied') throw new OutcomeUnknown('commit outcome unknown (injected fault: applied)');
    return result;
  }

  private rollback(): void {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }

  private topicExists(name: string): boolean {
    return this.q('SELECT 1 AS x FROM topics WHERE name = ?').get(name) !== undefined;
  }

  private requireTopic(name: string): void {
    if (!this.topicExists(name)) throw QuireError.notFound(`topic "${name}"`, 'topic');
  }

  private requireVersion(topic: string, version: number): VersionRow {
    const row = this.q('SELECT * FROM versions WHERE topic = ? AND version = ?').get(topic, version) as VersionRow | undefined;
    if (row !== undefined) return row;
    this.requireTopic(topic);
    throw QuireError.notFound(`version ${version} of topic "${topic}"`, 'version');
  }

  /**
   * After a write a consumer could see, in the same transaction: append to the change feed
   * and replace the topic's state stamp (atomic with the state it stamps).
   */
  private recordChange(topic: string): void {
    const now = this.clock.now();
    this.q('INSERT INTO changes (topic, at) VALUES (?, ?)').run(topic, now);
    this.q('UPDATE topics SET stamp = ? WHERE name = ?').run(randomBytes(8).toString('hex'), topic);
    if (++this.changesSincePrune >= PRUNE_EVERY) {
      this.changesSincePrune = 0;
      // Keep the newest row whatever its age: it anchors MAX(id) for readers.
      this.q('DELETE FROM changes WHERE at < ? AND id < (SELECT MAX(id) FROM changes)').run(now - this.changeRetentionMs);
    }
  }

  private versionByPublishId(topic: string, publishId: string): VersionRecord | undefined {
    const row = this.q('SELECT * FROM versions WHERE topic = ? AND publish_id = ?').get(topic, publishId) as VersionRow | undefined;
    return row === undefined ? undefined : versionFromRow(row);
  }

  private takeCommitFault(): MetadataStoreFaults['commitOutcomeUnknown'] {
    const fault = this.faults.commitOutcomeUnknown;
    delete this.faults.commitOutcomeUnknown;
    return fault;
  }

  // ---- lifecycle -----------------------------------------------------------------

  migrate(): Promise<void> {
    return this.call(() => {
      applyMigrations(this.db, this.clock.now());
      const row = this.q('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
      if ((row.v ?? 0) > SCHEMA_VERSION) {
        throw new QuireError(
          Code.FAILED_PRECONDITION,
          `embedded metadata store: the database is at schema version ${row.v}, newer than this build's ${SCHEMA_VERSION}; upgrade Quire`,
        );
      }
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.statements.clear();
      this.db.close();
    }
    return Promise.resolve();
  }

  // ---- topics -----------------------------------------------------------------------

  createTopic(topic: Topic): Promise<Topic> {
    return this.call(() => {
      const t = { ...guardTopic(topic), revision: 1 };
      this.write(() => {
        if (this.topicExists(t.name)) {
          throw new QuireError(Code.ALREADY_EXISTS, `topic "${t.name}" already exists`, { field: 'name' });
        }
        this.q(
          `INSERT INTO topics (name, owner, description, retention, inline_threshold, rollout_plan, json_schema,
             allowed_applications, encryption, created_at, updated_at, revision)
           VALUES (:name, :owner, :description, :retention, :inline_threshold, :rollout_plan, :json_schema,
             :allowed_applications, :encryption, :created_at, :updated_at, :revision)`,
        ).run(topicToRow(t));
        this.recordChange(t.name);
      });
      return t;
    });
  }

  getTopic(name: string): Promise<Topic | undefined> {
    return this.call(() => {
      const n = guardTopicName(name, 'name');
      const row = this.q('SELECT * FROM topics WHERE name = ?').get(n) as TopicRow | undefined;
      return row === undefined ? undefined : topicFromRow(row);
    });
  }

  listTopics(page?: PageRequest): Promise<Page<Topic>> {
    return this.call(() => {
      const p = guardPage(page);
      const after = p.cursor === undefined ? undefined : decodeCursor(p.cursor, isTopicCursor).n;
      const rows = (
        after === undefined
          ? this.q('SELECT * FROM topics ORDER BY name LIMIT ?').all(p.limit + 1)
          : this.q('SELECT * FROM topics WHERE name > ? ORDER BY name LIMIT ?').all(after, p.limit + 1)
      ) as TopicRow[];
      return pageOf(rows.map(topicFromRow), p.limit, (t) => encodeCursor({ n: t.name }));
    });
  }

  listTopicStamps(page?: PageRequest): Promise<Page<TopicStamp>> {
    return this.call(() => {
      const p = guardPage(page);
      const after = p.cursor === undefined ? undefined : decodeCursor(p.cursor, isTopicCursor).n;
      const rows = (
        after === undefined
          ? this.q('SELECT name, stamp FROM topics ORDER BY name LIMIT ?').all(p.limit + 1)
          : this.q('SELECT name, stamp FROM topics WHERE name > ? ORDER BY name LIMIT ?').all(after, p.limit + 1)
      ) as { name: string; stamp: string | null }[];
      const items = rows.map((r): TopicStamp => (r.stamp === null ? { name: r.name } : { name: r.name, stamp: r.stamp }));
      return pageOf(items, p.limit, (t) => encodeCursor({ n: t.name }));
    });
  }

  updateTopic(topic: Topic, expectedRevision: number): Promise<Topic> {
    return this.call(() => {
      const t = guardTopic(topic);
      const expected = guardRevision(expectedRevision);
      return this.write(() => {
        const stored = this.q('SELECT revision, created_at FROM topics WHERE name = ?').get(t.name) as
          | { revision: number; created_at: number }
          | undefined;
        if (stored === undefined) throw QuireError.notFound(`topic "${t.name}"`, 'name');
        if (stored.revision !== expected) {
          throw new QuireError(
            Code.ABORTED,
            `topic "${t.name}" was changed by someone else (stored revision ${stored.revision}, expected ${expected}); reload and retry`,
            { field: 'revision' },
          );
        }
        const next: Topic = { ...t, createdAt: stored.created_at, revision: expected + 1 };
        this.q(
          `UPDATE topics SET owner = :owner, description = :description, retention = :retention,
             inline_threshold = :inline_threshold, rollout_plan = :rollout_plan, json_schema = :json_schema,
             allowed_applications = :allowed_applications, encryption = :encryption, updated_at = :updated_at, revision = :revision
           WHERE name = :name`,
        ).run(topicToRow(next));
        this.recordChange(t.name);
        return next;
      });
    });
  }

  // ---- versions ------------------------------------------------------------------------

  commitVersion(v: NewVersion, inline?: Uint8Array): Promise<VersionRecord> {
    return this.call(() => {
      const nv = guardNewVersion(v, inline);
      const fault = this.takeCommitFault();
      for (let attempt = 1; ; attempt++) {
        try {
          return this.write(() => this.commitInTransaction(nv, inline), attempt === 1 ? fault : undefined);
        } catch (err) {
          if (!(err instanceof OutcomeUnknown)) throw err;
          // Resolve the unknown outcome: the publishId says whether our write landed.
          const written = this.versionByPublishId(nv.topic, nv.publishId);
          if (written !== undefined) return written;
          if (attempt >= COMMIT_ATTEMPTS) throw err;
        }
      }
    });
  }

  private commitInTransaction(nv: NewVersion, inline: Uint8Array | undefined): VersionRecord {
    const existing = this.versionByPublishId(nv.topic, nv.publishId);
    if (existing !== undefined) return existing;
    this.requireTopic(nv.topic);
    const { head } = this.q('SELECT COALESCE(MAX(version), 0) AS head FROM versions WHERE topic = ?').get(nv.topic) as { head: number };
    const record: VersionRecord = { ...nv, version: head + 1 };
    if (nv.pointer.kind === 'inline' && inline !== undefined) {
      const bytes = Buffer.from(inline.buffer, inline.byteOffset, inline.byteLength);
      const res = this.q('INSERT INTO inline_data (topic, blob_id, bytes) VALUES (?, ?, ?) ON CONFLICT (topic, blob_id) DO NOTHING').run(
        nv.topic,
        nv.pointer.blobId,
        bytes,
      );
      if (res.changes !== 1) {
        throw new QuireError(Code.ALREADY_EXISTS, `inline blob "${nv.pointer.blobId}" of topic "${nv.topic}" already exists`, {
          field: 'pointer.blobId',
        });
      }
    }
    this.q(
      `INSERT INTO versions (topic, version, publish_id, created_at, publisher, metadata, content_type, size, sha256, pointer)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      record.topic,
      record.version,
      record.publishId,
      record.createdAt,
      record.publisher,
      JSON.stringify(record.metadata),
      record.contentType,
      record.size,
      record.sha256,
      JSON.stringify(record.pointer),
    );
    this.recordChange(nv.topic);
    return record;
  }

  getVersion(topic: string, version: number): Promise<VersionRecord | undefined> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const n = guardVersion(version);
      const row = this.q('SELECT * FROM versions WHERE topic = ? AND version = ?').get(t, n) as VersionRow | undefined;
      return row === undefined ? undefined : versionFromRow(row);
    });
  }

  getVersions(topic: string, versions: readonly number[]): Promise<VersionRecord[]> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const wanted = guardVersionList(versions);
      if (wanted.length === 0) return [];
      const rows = this.q('SELECT * FROM versions WHERE topic = ? AND version IN (SELECT value FROM json_each(?))').all(
        t,
        JSON.stringify(wanted),
      ) as VersionRow[];
      const byNumber = new Map(rows.map((r) => [r.version, versionFromRow(r)]));
      const out: VersionRecord[] = [];
      for (const n of new Set(wanted)) {
        const rec = byNumber.get(n);
        if (rec !== undefined) out.push(rec);
      }
      return out;
    });
  }

  headVersion(topic: string): Promise<number> {
    return this.call(() => {
      const t = guardTopicName(topic);
      return (this.q('SELECT COALESCE(MAX(version), 0) AS head FROM versions WHERE topic = ?').get(t) as { head: number }).head;
    });
  }

  listVersions(topic: string, req?: ListVersionsRequest): Promise<Page<VersionRecord>> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const r = guardListVersions(req);
      let after: number | undefined;
      if (r.cursor !== undefined) {
        const c = decodeCursor(r.cursor, isVersionCursor);
        if (c.o !== r.order) throw QuireError.invalid('cursor', `was made for order "${c.o}", not "${r.order}"`);
        after = c.v;
      }
      const where = ['topic = ?'];
      const params: unknown[] = [t];
      if (!r.includeDeleted) where.push('deleted_at IS NULL');
      if (after !== undefined) {
        where.push(r.order === 'desc' ? 'version < ?' : 'version > ?');
        params.push(after);
      }
      params.push(r.limit + 1);
      const sql = `SELECT * FROM versions WHERE ${where.join(' AND ')} ORDER BY version ${r.order === 'desc' ? 'DESC' : 'ASC'} LIMIT ?`;
      const rows = this.q(sql).all(...params) as VersionRow[];
      return pageOf(rows.map(versionFromRow), r.limit, (v) => encodeCursor({ v: v.version, o: r.order }));
    });
  }

  getInlineData(topic: string, blobId: string): Promise<Uint8Array | undefined> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const id = guardId(blobId, 'blobId');
      const row = this.q('SELECT bytes FROM inline_data WHERE topic = ? AND blob_id = ?').get(t, id) as { bytes: Buffer } | undefined;
      return row === undefined ? undefined : new Uint8Array(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength);
    });
  }

  markVersionDeleted(topic: string, version: number, at: number): Promise<void> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const n = guardVersion(version);
      const when = guardTime(at, 'at');
      this.write(() => {
        const row = this.requireVersion(t, n);
        const pointer = versionFromRow(row).pointer;
        if (pointer.kind === 'inline') this.q('DELETE FROM inline_data WHERE topic = ? AND blob_id = ?').run(t, pointer.blobId);
        if (row.deleted_at === null) {
          this.q('UPDATE versions SET deleted_at = ? WHERE topic = ? AND version = ?').run(when, t, n);
          this.recordChange(t);
        }
      });
    });
  }

  // ---- releases and pins ---------------------------------------------------------------

  putRelease(release: Release): Promise<void> {
    return this.call(() => {
      const r = guardRelease(release);
      this.write(() => {
        this.requireVersion(r.topic, r.version);
        this.q(
          `INSERT INTO releases (topic, version, scope_key, scope, released_at, released_by, run_id, withdrawn_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
           ON CONFLICT (topic, version, scope_key) DO UPDATE SET scope = excluded.scope, released_at = excluded.released_at,
             released_by = excluded.released_by, run_id = excluded.run_id, withdrawn_at = NULL`,
        ).run(r.topic, r.version, r.scopeKey, JSON.stringify(r.scope), r.releasedAt, r.releasedBy, r.runId ?? null);
        this.recordChange(r.topic);
      });
    });
  }

  withdrawRelease(topic: string, version: number, scopeKey: string, at: number): Promise<void> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const n = guardVersion(version);
      const key = guardScopeKey(scopeKey);
      const when = guardTime(at, 'at');
      this.write(() => {
        const row = this.q('SELECT withdrawn_at FROM releases WHERE topic = ? AND version = ? AND scope_key = ?').get(t, n, key) as
          | { withdrawn_at: number | null }
          | undefined;
        if (row === undefined) {
          this.requireVersion(t, n);
          throw QuireError.notFound(`release of version ${n} of topic "${t}" to scope "${key}"`, 'scopeKey');
        }
        if (row.withdrawn_at !== null) return;
        this.q('UPDATE releases SET withdrawn_at = ? WHERE topic = ? AND version = ? AND scope_key = ?').run(when, t, n, key);
        this.recordChange(t);
      });
    });
  }

  listReleases(topic: string): Promise<Release[]> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const rows = this.q('SELECT * FROM releases WHERE topic = ? ORDER BY version, scope_key').all(t) as ReleaseRow[];
      return rows.map(releaseFromRow);
    });
  }

  putPin(pin: Pin): Promise<void> {
    return this.call(() => {
      const p = guardPin(pin);
      this.write(() => {
        this.requireVersion(p.topic, p.version);
        if (this.q('SELECT 1 AS x FROM pins WHERE topic = ? AND pin_id = ?').get(p.topic, p.pinId) !== undefined) {
          throw new QuireError(Code.ALREADY_EXISTS, `pin "${p.pinId}" of topic "${p.topic}" already exists`, { field: 'pinId' });
        }
        this.q('UPDATE pins SET unpinned_at = ?, unpinned_by = ? WHERE topic = ? AND scope_key = ? AND unpinned_at IS NULL').run(
          p.pinnedAt,
          p.pinnedBy,
          p.topic,
          p.scopeKey,
        );
        this.q(
          `INSERT INTO pins (topic, pin_id, scope_key, scope, version, reason, pinned_by, pinned_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(p.topic, p.pinId, p.scopeKey, JSON.stringify(p.scope), p.version, p.reason, p.pinnedBy, p.pinnedAt);
        this.recordChange(p.topic);
      });
    });
  }

  removePin(topic: string, scopeKey: string, at: number, by: string): Promise<Pin | undefined> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const key = guardScopeKey(scopeKey);
      const when = guardTime(at, 'at');
      const who = guardId(by, 'by');
      return this.write(() => {
        const row = this.q('SELECT * FROM pins WHERE topic = ? AND scope_key = ? AND unpinned_at IS NULL').get(t, key) as PinRow | undefined;
        if (row === undefined) return undefined;
        this.q('UPDATE pins SET unpinned_at = ?, unpinned_by = ? WHERE topic = ? AND pin_id = ?').run(when, who, t, row.pin_id);
        this.recordChange(t);
        return pinFromRow({ ...row, unpinned_at: when, unpinned_by: who });
      });
    });
  }

  listPins(topic: string): Promise<Pin[]> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const rows = this.q('SELECT * FROM pins WHERE topic = ? ORDER BY pinned_at, pin_id').all(t) as PinRow[];
      return rows.map(pinFromRow);
    });
  }

  // ---- change feed ------------------------------------------------------------------------

  changesSince(cursor?: string): Promise<{ changes: Change[]; cursor: string }> {
    return this.call(() => {
      if (cursor === undefined) {
        const row = this.q("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").get() as { seq: number } | undefined;
        return { changes: [], cursor: encodeCursor({ c: row?.seq ?? 0 }) };
      }
      if (typeof cursor !== 'string') throw QuireError.invalid('cursor', 'must be a string');
      const after = decodeCursor(cursor, isChangeCursor).c;
      const rows = this.q('SELECT id, topic, at FROM changes WHERE id > ? ORDER BY id LIMIT ?').all(after, CHANGES_PER_CALL) as {
        id: number;
        topic: string;
        at: number;
      }[];
      const last = rows.at(-1)?.id ?? after;
      return { changes: rows.map((r) => ({ topic: r.topic, at: r.at })), cursor: encodeCursor({ c: last }) };
    });
  }

  // ---- rollout runs --------------------------------------------------------------------------

  createRun(run: RolloutRun): Promise<void> {
    return this.call(() => {
      const r = guardRun(run);
      this.write(() => {
        this.requireTopic(r.topic);
        if (this.q('SELECT 1 AS x FROM runs WHERE topic = ? AND run_id = ?').get(r.topic, r.runId) !== undefined) {
          throw new QuireError(Code.ALREADY_EXISTS, `run "${r.runId}" of topic "${r.topic}" already exists`, { field: 'runId' });
        }
        this.q(
          `INSERT INTO runs (topic, run_id, version, plan, status, stage_index, stage_released_at, paused_at, reason,
             created_at, updated_at, started_by, epoch, revision)
           VALUES (:topic, :run_id, :version, :plan, :status, :stage_index, :stage_released_at, :paused_at, :reason,
             :created_at, :updated_at, :started_by, :epoch, :revision)`,
        ).run(runToRow(r));
      });
    });
  }

  getRun(topic: string, runId: string): Promise<RolloutRun | undefined> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const id = guardId(runId, 'runId');
      const row = this.q('SELECT * FROM runs WHERE topic = ? AND run_id = ?').get(t, id) as RunRow | undefined;
      return row === undefined ? undefined : runFromRow(row);
    });
  }

  listRuns(topic: string): Promise<RolloutRun[]> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const rows = this.q('SELECT * FROM runs WHERE topic = ? ORDER BY created_at DESC, run_id DESC').all(t) as RunRow[];
      return rows.map(runFromRow);
    });
  }

  listActiveRuns(): Promise<RolloutRun[]> {
    return this.call(() => {
      const rows = this.q("SELECT * FROM runs WHERE status IN ('running', 'paused') ORDER BY topic, created_at, run_id").all() as RunRow[];
      return rows.map(runFromRow);
    });
  }

  updateRun(run: RolloutRun, expectedRevision: number): Promise<boolean> {
    return this.call(() => {
      const { run: r, expectedRevision: expected } = guardRunUpdate(run, expectedRevision);
      return this.write(() => {
        const res = this.q(
          `UPDATE runs SET version = :version, plan = :plan, status = :status, stage_index = :stage_index,
             stage_released_at = :stage_released_at, paused_at = :paused_at, reason = :reason, created_at = :created_at,
             updated_at = :updated_at, started_by = :started_by, epoch = :epoch, revision = :revision
           WHERE topic = :topic AND run_id = :run_id AND revision = :expected`,
        ).run({ ...runToRow(r), expected });
        if (res.changes === 1) return true;
        if (this.q('SELECT 1 AS x FROM runs WHERE topic = ? AND run_id = ?').get(r.topic, r.runId) === undefined) {
          throw QuireError.notFound(`run "${r.runId}" of topic "${r.topic}"`, 'runId');
        }
        return false;
      });
    });
  }

  // ---- leases ------------------------------------------------------------------------------------

  tryAcquireLease(name: string, owner: string, ttlMs: number): Promise<Lease | undefined> {
    return this.call(() => {
      const req = guardLeaseRequest(name, owner, ttlMs);
      return this.write(() => {
        const now = this.clock.now();
        const row = this.q('SELECT * FROM leases WHERE name = ?').get(req.name) as LeaseRow | undefined;
        const expiresAt = now + req.ttlMs;
        if (row === undefined) {
          this.q('INSERT INTO leases (name, owner, epoch, expires_at) VALUES (?, ?, 1, ?)').run(req.name, req.owner, expiresAt);
          return { name: req.name, owner: req.owner, epoch: 1, expiresAt };
        }
        const held = row.expires_at > now;
        if (held && row.owner !== req.owner) return undefined;
        // Still ours: extend at the same epoch. Free or expired: a new holder, a new epoch.
        const epoch = held ? row.epoch : row.epoch + 1;
        this.q('UPDATE leases SET owner = ?, epoch = ?, expires_at = ? WHERE name = ?').run(req.owner, epoch, expiresAt, req.name);
        return { name: req.name, owner: req.owner, epoch, expiresAt };
      });
    });
  }

  renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    return this.call(() => {
      const l = guardLease(lease);
      const ttl = guardTtl(ttlMs);
      return this.write(() => {
        const now = this.clock.now();
        const row = this.q('SELECT * FROM leases WHERE name = ?').get(l.name) as LeaseRow | undefined;
        if (row === undefined || row.owner !== l.owner || row.epoch !== l.epoch || row.expires_at <= now) return undefined;
        const expiresAt = Math.max(row.expires_at, now + ttl);
        this.q('UPDATE leases SET expires_at = ? WHERE name = ?').run(expiresAt, l.name);
        return leaseFromRow({ ...row, expires_at: expiresAt });
      });
    });
  }

  releaseLease(lease: Lease): Promise<void> {
    return this.call(() => {
      const l = guardLease(lease);
      this.write(() => {
        // Keep the row (and its epoch) so the next holder's epoch is higher.
        this.q('UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ? AND epoch = ?').run(l.name, l.owner, l.epoch);
      });
    });
  }

  getLease(name: string): Promise<Lease | undefined> {
    return this.call(() => {
      const n = guardId(name, 'name');
      const row = this.q('SELECT * FROM leases WHERE name = ? AND expires_at > ?').get(n, this.clock.now()) as LeaseRow | undefined;
      return row === undefined ? undefined : leaseFromRow(row);
    });
  }

  // ---- audit -----------------------------------------------------------------------------------------

  appendAudit(entry: AuditEntry): Promise<void> {
    return this.call(() => {
      const e = guardAuditEntry(entry);
      // Idempotent on id: appending the same entry again (a retry) is a no-op.
      this.q(
        `INSERT INTO audit (id, at, actor, action, topic, reason, details) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING`,
      ).run(e.id, e.at, e.actor, e.action, e.topic ?? null, e.reason ?? null, JSON.stringify(e.details));
    });
  }

  listAudit(query?: AuditQuery): Promise<Page<AuditEntry>> {
    return this.call(() => {
      const q = guardAuditQuery(query);
      const where: string[] = [];
      const params: unknown[] = [];
      if (q.topic !== undefined) {
        where.push('topic = ?');
        params.push(q.topic);
      }
      if (q.since !== undefined) {
        where.push('at >= ?');
        params.push(q.since);
      }
      if (q.until !== undefined) {
        where.push('at < ?');
        params.push(q.until);
      }
      if (q.cursor !== undefined) {
        const c = decodeCursor(q.cursor, isAuditCursor);
        where.push('(at < ? OR (at = ? AND id < ?))');
        params.push(c.a, c.a, c.i);
      }
      params.push(q.limit + 1);
      const sql = `SELECT id, at, actor, action, topic, reason, details FROM audit
        ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY at DESC, id DESC LIMIT ?`;
      const rows = this.q(sql).all(...params) as AuditRow[];
      return pageOf(rows.map(auditFromRow), q.limit, (e) => encodeCursor({ a: e.at, i: e.id }));
    });
  }

  // ---- API tokens ------------------------------------------------------------------------------------------

  createToken(token: ApiToken): Promise<void> {
    return this.call(() => {
      const t = guardToken(token);
      const res = this.q('INSERT INTO api_tokens (id, data) VALUES (?, ?) ON CONFLICT (id) DO NOTHING').run(t.id, tokenToJson(t));
      if (res.changes === 0) throw new QuireError(Code.ALREADY_EXISTS, `token ${t.id} already exists`, { field: 'id' });
    });
  }

  getToken(id: string): Promise<ApiToken | undefined> {
    return this.call(() => {
      const row = this.q('SELECT data FROM api_tokens WHERE id = ?').get(guardTokenId(id)) as { data: string } | undefined;
      return row === undefined ? undefined : tokenFromJson(row.data);
    });
  }

  listTokens(): Promise<ApiToken[]> {
    return this.call(() => (this.q('SELECT data FROM api_tokens ORDER BY id').all() as { data: string }[]).map((r) => tokenFromJson(r.data)));
  }

  revokeToken(id: string, at: number, by: string): Promise<ApiToken> {
    return this.call(() => {
      const i = guardTokenId(id);
      const when = guardTime(at, 'at');
      const who = guardId(by, 'by');
      return this.write(() => {
        const row = this.q('SELECT data FROM api_tokens WHERE id = ?').get(i) as { data: string } | undefined;
        if (row === undefined) throw QuireError.notFound(`token ${i}`, 'id');
        const t = revoked(tokenFromJson(row.data), when, who);
        this.q('UPDATE api_tokens SET data = ? WHERE id = ?').run(tokenToJson(t), i);
        return t;
      });
    });
  }

  // ---- fleet reports -------------------------------------------------------------------------------------

  putFleetReports(reports: readonly FleetReport[]): Promise<void> {
    return this.call(() => {
      const rs = guardFleetReports(reports);
      if (rs.length === 0) return;
      this.write(() => {
        const upsert = this.q(
          `INSERT INTO fleet_reports (topic, instance, identity, version, failed_version, error, reported_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (topic, instance) DO UPDATE SET identity = excluded.identity, version = excluded.version,
             failed_version = excluded.failed_version, error = excluded.error, reported_at = excluded.reported_at`,
        );
        for (const r of rs) {
          upsert.run(r.topic, r.instance, JSON.stringify(r.identity), r.version, r.failedVersion ?? null, r.error ?? null, r.reportedAt);
        }
      });
    });
  }

  listFleetReports(topic: string, since?: number): Promise<FleetReport[]> {
    return this.call(() => {
      const t = guardTopicName(topic);
      const from = guardOptionalTime(since, 'since') ?? 0;
      const rows = this.q('SELECT * FROM fleet_reports WHERE topic = ? AND reported_at >= ? ORDER BY instance').all(t, from) as FleetRow[];
      return rows.map(fleetFromRow);
    });
  }
}

/** A page from `limit + 1` fetched rows: the extra row only says there is a next page. */
function pageOf<T>(rows: T[], limit: number, cursorOf: (last: T) => string): Page<T> {
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  return { items, next: cursorOf(items[items.length - 1] as T) };
}
