/**
 * The Cassandra MetadataStore (production; multi-DC replication is how Quire goes global).
 *
 * - Every statement is prepared and carries an explicit consistency (`db.ts`).
 * - Rows that need compare-and-set (topics, versions, runs, leases) are written only with
 *   lightweight transactions; every other table only with plain writes.
 * - Version numbers: read the head with SERIAL consistency, `INSERT … IF NOT EXISTS` head+1,
 *   retry with jittered backoff on a lost race. An LWT whose outcome is unknown (CAS write
 *   timeout, client timeout) is resolved by a SERIAL read of the row it tried to write,
 *   comparing the publishId (or the write id of other LWT rows).
 * - See docs in `migrations.ts` for the tables and `errors.ts` for the error mapping.
 */
import { randomBytes } from 'node:crypto';
import cassandra from 'cassandra-driver';
import { Code, QuireError, isActiveRun, systemClock } from '@quire/core';
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
import { guardToken, guardTokenId, revoked, tokenFromJson, tokenToJson } from '../tokens.ts';
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
import { statements, type Statements } from './cql.ts';
import { CONSISTENCIES, Db, num, reqNum, SERIAL_CONSISTENCIES, sameUuid, sleep, str, uuid, type Row } from './db.ts';
import { isUnknownWriteOutcome, simulatedCasWriteTimeout, toQuireError } from './errors.ts';
import { migrate, type Replication } from './migrate.ts';
import {
  auditFromRow,
  fleetFromRow,
  pinFromRow,
  releaseFromRow,
  runData,
  runFromRow,
  topicData,
  topicFromRow,
  versionFromRow,
  versionParams,
} from './rows.ts';

export interface CassandraMetadataStoreOptions {
  /** Hosts (no port); `port` applies to all. */
  contactPoints: string[];
  /** The data center this process runs in (LOCAL_* consistencies and load balancing use it). */
  localDataCenter: string;
  keyspace: string;
  /** CQL native port (default 9042). */
  port?: number;
  /**
   * Replication of the keyspace when `migrate()` creates it (default
   * NetworkTopologyStrategy with 3 replicas in `localDataCenter`). Ignored when it exists.
   */
  replication?: Replication;
  /** Consistency of reads, plain writes and the commit phase of LWTs (default LOCAL_QUORUM). */
  consistency?: keyof typeof CONSISTENCIES;
  /** Consistency of the Paxos phase of LWTs and of SERIAL reads (default LOCAL_SERIAL). */
  serialConsistency?: keyof typeof SERIAL_CONSISTENCIES;
  /** Test-only fault injection (see MetadataStoreFaults). */
  faults?: MetadataStoreFaults;
  /** Time source for lease expiry and change times (default: the system clock). */
  clock?: Clock;
}

/** Versions read in one SERIAL read when allocating: the head and a window for idempotency. */
const HEAD_WINDOW = 16;
/** Version allocation gives up after this many lost races or this much time (ABORTED). */
const COMMIT_MAX_ATTEMPTS = 200;
const COMMIT_MAX_MS = 30_000;
/** Change feed: partition width, how long rows are kept (the table's TTL), overlap re-read. */
const CHANGE_BUCKET_MS = 60_000;
const CHANGE_TTL_MS = 24 * 3600 * 1000;
const CHANGE_OVERLAP_MS = 2_000;
/** At most this many change ids remembered in a cursor for de-duplication in the overlap. */
const CHANGE_CURSOR_IDS_MAX = 2_000;
/** Lease rows outlive their expiry by this long before their TTL removes them. */
const LEASE_ROW_GRACE_S = 24 * 3600;
const FLEET_REPORT_TTL_S = 3600;
const AUDIT_DAY_MS = 24 * 3600 * 1000;
/** Upper bound of the (at, id) clustering tuple when a listing starts at the newest entry. */
const MAX_TIME = Number.MAX_SAFE_INTEGER;
/** Parallel requests when a call fans out (change buckets, active runs). */
const FAN_OUT = 16;
/** Parallel single-partition reads that fill one page of topics. */
const PAGE_FAN_OUT = 64;

const KEYSPACE_RE = /^[a-z][a-z0-9_]{0,47}$/;
const DC_RE = /^[A-Za-z0-9_.-]+$/;

export function createCassandraMetadataStore(options: CassandraMetadataStoreOptions): MetadataStore {
  return new CassandraMetadataStore(options);
}

const isTopicCursor = (c: Record<string, unknown>): c is { n: string } => typeof c.n === 'string';
const isVersionCursor = (c: Record<string, unknown>): c is { v: number; o: string } =>
  Number.isSafeInteger(c.v) && (c.o === 'asc' || c.o === 'desc');
const isAuditCursor = (c: Record<string, unknown>): c is { a: number; i: string } =>
  Number.isSafeInteger(c.a) && (c.a as number) >= 0 && typeof c.i === 'string';
const isChangeCursor = (c: Record<string, unknown>): c is { t: number; s: string[] } =>
  Number.isSafeInteger(c.t) && Array.isArray(c.s) && c.s.every((x) => typeof x === 'string');

/** won: our INSERT applied; same: the number holds our publishId from a concurrent call; taken: someone else's; free: not applied, still free. */
type Allocation = 'won' | 'same' | 'taken' | 'free';

function validateOptions(o: CassandraMetadataStoreOptions): void {
  if (typeof o !== 'object' || o === null) throw QuireError.invalid('options', 'are required');
  if (!Array.isArray(o.contactPoints) || o.contactPoints.length === 0 || !o.contactPoints.every((h) => typeof h === 'string' && h !== '')) {
    throw QuireError.invalid('contactPoints', 'must list at least one host');
  }
  if (typeof o.localDataCenter !== 'string' || !DC_RE.test(o.localDataCenter)) {
    throw QuireError.invalid('localDataCenter', 'must be a data center name');
  }
  if (typeof o.keyspace !== 'string' || !KEYSPACE_RE.test(o.keyspace)) {
    throw QuireError.invalid('keyspace', 'must be 1-48 characters of a-z, 0-9 and "_", starting with a letter');
  }
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)) {
    throw QuireError.invalid('port', 'must be a TCP port (1-65535)');
  }
  if (o.consistency !== undefined && !(o.consistency in CONSISTENCIES)) {
    throw QuireError.invalid('consistency', `must be one of ${Object.keys(CONSISTENCIES).join(', ')}`);
  }
  if (o.serialConsistency !== undefined && !(o.serialConsistency in SERIAL_CONSISTENCIES)) {
    throw QuireError.invalid('serialConsistency', `must be one of ${Object.keys(SERIAL_CONSISTENCIES).join(', ')}`);
  }
  const r = o.replication;
  if (r !== undefined) {
    const rf = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 100;
    if (r.class === 'SimpleStrategy') {
      if (!rf(r.replicationFactor)) throw QuireError.invalid('replication.replicationFactor', 'must be an integer between 1 and 100');
    } else if (r.class === 'NetworkTopologyStrategy') {
      const dcs = Object.entries(r.dataCenters ?? {});
      if (dcs.length === 0) throw QuireError.invalid('replication.dataCenters', 'must name at least one data center');
      for (const [dc, n] of dcs) {
        if (!DC_RE.test(dc)) throw QuireError.invalid(`replication.dataCenters.${dc}`, 'is not a data center name');
        if (!rf(n)) throw QuireError.invalid(`replication.dataCenters.${dc}`, 'must be an integer between 1 and 100');
      }
    } else {
      throw QuireError.invalid('replication.class', 'must be "SimpleStrategy" or "NetworkTopologyStrategy"');
    }
  }
}

class CassandraMetadataStore implements MetadataStore {
  private readonly client: cassandra.Client;
  private readonly db: Db;
  private readonly q: Statements;
  private readonly clock: Clock;
  private readonly faults: MetadataStoreFaults;
  private readonly replication: Replication;
  private closed = false;

  constructor(private readonly options: CassandraMetadataStoreOptions) {
    validateOptions(options);
    const consistency = CONSISTENCIES[options.consistency ?? 'LOCAL_QUORUM'];
    const serialConsistency = SERIAL_CONSISTENCIES[options.serialConsistency ?? 'LOCAL_SERIAL'];
    this.client = new cassandra.Client({
      contactPoints: options.contactPoints,
      localDataCenter: options.localDataCenter,
      protocolOptions: { port: options.port ?? 9042 },
      queryOptions: { prepare: true, consistency, serialConsistency },
      socketOptions: { connectTimeout: 5_000, readTimeout: 12_000 },
      // Back within seconds of a node's return (the driver's default backs off to 10 min):
      // the services must recover by themselves after an outage.
      policies: { reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(250, 4_000, true) },
    });
    this.db = new Db(this.client, consistency, serialConsistency);
    this.q = statements(options.keyspace);
    this.clock = options.clock ?? systemClock;
    this.faults = { ...options.faults };
    this.replication = options.replication ?? {
      class: 'NetworkTopologyStrategy',
      dataCenters: { [options.localDataCenter]: 3 },
    };
  }

  // ---- plumbing ------------------------------------------------------------------

  /** Run a method body, translating every driver error into a QuireError (errors.ts). */
  private async call<T>(what: string, body: () => Promise<T>): Promise<T> {
    if (this.closed) throw new QuireError(Code.FAILED_PRECONDITION, 'cassandra metadata store is closed');
    try {
      return await body();
    } catch (err) {
      throw toQuireError(err, what);
    }
  }

  private takeCommitFault(): MetadataStoreFaults['commitOutcomeUnknown'] {
    const fault = this.faults.commitOutcomeUnknown;
    delete this.faults.commitOutcomeUnknown;
    return fault;
  }

  private async topicExists(name: string): Promise<boolean> {
    return (await this.db.readOne(this.q.getTopicRevision, [name])) !== undefined;
  }

  private async requireTopic(name: string, field = 'topic'): Promise<void> {
    if (!(await this.topicExists(name))) throw QuireError.notFound(`topic "${name}"`, field);
  }

  private async requireVersion(topic: string, version: number): Promise<Row> {
    const row = await this.db.readOne(this.q.getVersion, [topic, version]);
    if (row !== undefined) return row;
    await this.requireTopic(topic);
    throw QuireError.notFound(`version ${version} of topic "${topic}"`, 'version');
  }

  /**
   * After a write a consumer could see: append to the change feed (a plain write; rows
   * expire with the table's TTL) and replace the topic's state stamp with the change's id.
   * Called only once the state write completed, so a stamp is never newer than its state.
   */
  private async recordChange(topic: string): Promise<void> {
    const at = this.clock.now();
    const id = randomBytes(8).toString('hex');
    await Promise.all([
      this.db.write(this.q.insertChange, [Math.floor(at / CHANGE_BUCKET_MS), at, id, topic]),
      this.db.write(this.q.stampTopic, [id, topic]),
    ]);
  }

  // ---- lifecycle -------------------------------------------------------------------

  migrate(): Promise<void> {
    return this.call('migrate', () =>
      migrate({
        client: this.client,
        keyspace: this.options.keyspace,
        replication: this.replication,
        consistency: this.db.consistency,
        serialConsistency: this.db.serialConsistency,
      }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.shutdown();
  }

  // ---- topics --------------------------------------------------------------------------

  createTopic(topic: Topic): Promise<Topic> {
    return this.call('createTopic', async () => {
      const t: Topic = { ...guardTopic(topic), revision: 1 };
      // The name index first (idempotent): a crash after it leaves a name listTopics skips.
      await this.db.write(this.q.insertTopicName, [t.name]);
      const writeId = uuid();
      const { applied } = await this.db.casResolved(this.q.insertTopic, [t.name, 1, topicData(t), writeId], async () =>
        sameUuid((await this.db.resolveRead(this.q.getTopic, [t.name], 'createTopic'))?.['write_id'], writeId),
      );
      if (!applied) throw new QuireError(Code.ALREADY_EXISTS, `topic "${t.name}" already exists`, { field: 'name' });
      await this.recordChange(t.name);
      return t;
    });
  }

  getTopic(name: string): Promise<Topic | undefined> {
    return this.call('getTopic', async () => {
      const n = guardTopicName(name, 'name');
      const row = await this.db.readOne(this.q.getTopic, [n]);
      return row === undefined ? undefined : topicFromRow(row);
    });
  }

  listTopics(page?: PageRequest): Promise<Page<Topic>> {
    return this.call('listTopics', async () => {
      const p = guardPage(page);
      let after = p.cursor === undefined ? undefined : decodeCursor(p.cursor, isTopicCursor).n;
      const items: Topic[] = [];
      // Names come from the clustering index in order; a name whose topic row is missing
      // (a createTopic that crashed half-way) is skipped.
      for (;;) {
        const want = p.limit + 1 - items.length;
        const names = (
          after === undefined
            ? await this.db.read(this.q.listTopicNames, [want])
            : await this.db.read(this.q.listTopicNamesAfter, [after, want])
        ).rows.map((r) => String(r['name']));
        const rows = await mapLimit(names, PAGE_FAN_OUT, (n) => this.db.readOne(this.q.getTopic, [n]));
        for (const row of rows) if (row !== undefined) items.push(topicFromRow(row));
        if (names.length < want || items.length > p.limit) break;
        after = names[names.length - 1];
      }
      return pageOf(items, p.limit, (t) => encodeCursor({ n: t.name }));
    });
  }

  listTopicStamps(page?: PageRequest): Promise<Page<TopicStamp>> {
    return this.call('listTopicStamps', async () => {
      const p = guardPage(page);
      const after = p.cursor === undefined ? undefined : decodeCursor(p.cursor, isTopicCursor).n;
      // One read of the names partition per page (no per-topic read).
      const rows = (
        after === undefined
          ? await this.db.read(this.q.listTopicStamps, [p.limit + 1])
          : await this.db.read(this.q.listTopicStampsAfter, [after, p.limit + 1])
      ).rows;
      const items = rows.map((r): TopicStamp => {
        const stamp = str(r['stamp']);
        return stamp === undefined ? { name: String(r['name']) } : { name: String(r['name']), stamp };
      });
      return pageOf(items, p.limit, (t) => encodeCursor({ n: t.name }));
    });
  }

  updateTopic(topic: Topic, expectedRevision: number): Promise<Topic> {
    return this.call('updateTopic', async () => {
      const t = guardTopic(topic);
      const expected = guardRevision(expectedRevision);
      const stored = await this.db.readOne(this.q.getTopic, [t.name]);
      if (stored === undefined) throw QuireError.notFound(`topic "${t.name}"`, 'name');
      const next: Topic = { ...t, createdAt: topicFromRow(stored).createdAt, revision: expected + 1 };
      const writeId = uuid();
      const { applied, row } = await this.db.casResolved(
        this.q.updateTopic,
        [next.revision, topicData(next), writeId, t.name, expected],
        async () => sameUuid((await this.db.resolveRead(this.q.getTopic, [t.name], 'updateTopic'))?.['write_id'], writeId),
      );
      if (!applied) {
        // A non-applied conditional update returns the current revision (null: no row).
        const current = num(row?.['revision']);
        if (current === undefined) throw QuireError.notFound(`topic "${t.name}"`, 'name');
        throw new QuireError(
          Code.ABORTED,
          `topic "${t.name}" was changed by someone else (stored revision ${current}, expected ${expected}); reload and retry`,
          { field: 'revision' },
        );
      }
      await this.recordChange(t.name);
      return next;
    });
  }

  // ---- versions ----------------------------------------------------------------------------

  commitVersion(v: NewVersion, inline?: Uint8Array): Promise<VersionRecord> {
    return this.call(`commitVersion ${String(v?.topic)}`, async () => {
      const nv = guardNewVersion(v, inline);
      const byId = await this.versionByPublishId(nv.topic, nv.publishId);
      if (byId !== undefined) return byId;
      await this.requireTopic(nv.topic);
      if (nv.pointer.kind === 'inline' && inline !== undefined) await this.storeInline(nv, inline);
      return this.allocate(nv, this.takeCommitFault());
    });
  }

  /** The version a publishId already has, via the publish_ids index. */
  private async versionByPublishId(topic: string, publishId: string): Promise<VersionRecord | undefined> {
    const idx = await this.db.readOne(this.q.getPublishId, [topic, publishId]);
    const n = num(idx?.['version']);
    if (n === undefined) return undefined;
    const row = await this.db.readOne(this.q.getVersion, [topic, n]);
    if (row === undefined || str(row['publish_id']) !== publishId) return undefined;
    return versionFromRow(row);
  }

  /** Inline bytes go first, into their own table; a blobId written by another publish is refused. */
  private async storeInline(nv: NewVersion, inline: Uint8Array): Promise<void> {
    const blobId = (nv.pointer as { blobId: string }).blobId;
    const owner = str((await this.db.readOne(this.q.getInlineOwner, [nv.topic, blobId]))?.['publish_id']);
    if (owner !== undefined && owner !== nv.publishId) {
      throw new QuireError(Code.ALREADY_EXISTS, `inline blob "${blobId}" of topic "${nv.topic}" already exists`, {
        field: 'pointer.blobId',
      });
    }
    const bytes = Buffer.from(inline.buffer, inline.byteOffset, inline.byteLength);
    await this.db.write(this.q.insertInline, [nv.topic, blobId, nv.publishId, bytes]);
  }

  /**
   * Allocate head + 1 for `nv`: SERIAL read of the newest versions (which also finds a
   * version this publishId already won, e.g. when an earlier call died before indexing
   * it), then `INSERT … IF NOT EXISTS`; a lost race backs off (jittered, growing) and
   * reads the head again.
   */
  private async allocate(nv: NewVersion, fault: MetadataStoreFaults['commitOutcomeUnknown']): Promise<VersionRecord> {
    const started = Date.now();
    let head = await this.serialHead(nv);
    for (let attempt = 1; ; attempt++) {
      if (head.mine !== undefined) return this.finishCommit(nv, head.mine, false);
      const candidate = head.head + 1;
      const outcome = await this.tryInsertVersion(nv, candidate, attempt === 1 ? fault : undefined);
      if (outcome === 'won' || outcome === 'same') return this.finishCommit(nv, candidate, outcome === 'won');
      if (attempt >= COMMIT_MAX_ATTEMPTS || Date.now() - started > COMMIT_MAX_MS) {
        throw new QuireError(
          Code.ABORTED,
          `could not allocate a version of topic "${nv.topic}" after ${attempt} attempts in ${Date.now() - started} ms (too many concurrent publishers); retry`,
          { field: 'topic' },
        );
      }
      if (outcome === 'free') {
        // Our INSERT was not applied and the number is still free: try it again at once.
        continue;
      }
      await sleep(commitBackoffMs(attempt));
      head = await this.serialHead(nv);
    }
  }

  private async serialHead(nv: NewVersion): Promise<{ head: number; mine?: number }> {
    const rows = (await this.db.serialRead(this.q.recentVersions, [nv.topic, HEAD_WINDOW])).rows;
    const head = num(rows[0]?.['version']) ?? 0;
    const mine = rows.find((r) => str(r['publish_id']) === nv.publishId);
    return mine === undefined ? { head } : { head, mine: reqNum(mine['version']) };
  }

  /**
   * One `INSERT … IF NOT EXISTS` of version `n`. An unknown outcome (see
   * `isUnknownWriteOutcome`) is resolved by a SERIAL read of row `n`: our publishId there
   * means we won; another means we lost; no row means it was not applied and cannot be
   * any more (the SERIAL read's ballot supersedes ours), so `n` is free.
   */
  private async tryInsertVersion(nv: NewVersion, n: number, fault: MetadataStoreFaults['commitOutcomeUnknown']): Promise<Allocation> {
    try {
      if (fault === 'not-applied') throw simulatedCasWriteTimeout();
      const rs = await this.db.cas(this.q.insertVersion, versionParams({ ...nv, version: n }));
      if (rs.wasApplied()) {
        if (fault === 'applied') throw simulatedCasWriteTimeout();
        return 'won';
      }
      // Not applied: the row returned is the one already there (maybe our own publishId,
      // committed by a concurrent call with the same publishId).
      return str(rs.first()?.['publish_id']) === nv.publishId ? 'same' : 'taken';
    } catch (err) {
      if (!isUnknownWriteOutcome(err)) throw err;
      const row = await this.db.resolveRead(this.q.versionOwner, [nv.topic, n], `commitVersion ${nv.topic}`);
      if (row === undefined) return 'free';
      return str(row['publish_id']) === nv.publishId ? 'won' : 'taken';
    }
  }

  /** After winning version `n`: index the publishId, record the change, return the record. */
  private async finishCommit(nv: NewVersion, n: number, ours: boolean): Promise<VersionRecord> {
    await this.db.write(this.q.insertPublishId, [nv.topic, nv.publishId, n]);
    await this.recordChange(nv.topic);
    if (ours) return { ...nv, version: n };
    // Won by an earlier call with the same publishId: return what is stored.
    const row = await this.db.readOne(this.q.getVersion, [nv.topic, n]);
    return row === undefined ? { ...nv, version: n } : versionFromRow(row);
  }

  getVersion(topic: string, version: number): Promise<VersionRecord | undefined> {
    return this.call('getVersion', async () => {
      const t = guardTopicName(topic);
      const n = guardVersion(version);
      const row = await this.db.readOne(this.q.getVersion, [t, n]);
      return row === undefined ? undefined : versionFromRow(row);
    });
  }

  getVersions(topic: string, versions: readonly number[]): Promise<VersionRecord[]> {
    return this.call('getVersions', async () => {
      const t = guardTopicName(topic);
      const wanted = [...new Set(guardVersionList(versions))];
      if (wanted.length === 0) return [];
      const rows = await this.db.readAll(this.q.getVersionsIn, [t, wanted]);
      const byNumber = new Map(rows.map((r) => [reqNum(r['version']), versionFromRow(r)]));
      return wanted.flatMap((n) => byNumber.get(n) ?? []);
    });
  }

  headVersion(topic: string): Promise<number> {
    return this.call('headVersion', async () => {
      const t = guardTopicName(topic);
      return num((await this.db.readOne(this.q.headVersion, [t]))?.['version']) ?? 0;
    });
  }

  listVersions(topic: string, req?: ListVersionsRequest): Promise<Page<VersionRecord>> {
    return this.call('listVersions', async () => {
      const t = guardTopicName(topic);
      const r = guardListVersions(req);
      let after: number | undefined;
      if (r.cursor !== undefined) {
        const c = decodeCursor(r.cursor, isVersionCursor);
        if (c.o !== r.order) throw QuireError.invalid('cursor', `was made for order "${c.o}", not "${r.order}"`);
        after = c.v;
      }
      const desc = r.order === 'desc';
      const items: VersionRecord[] = [];
      // Deleted versions are filtered here (a partition scan in clustering order), so
      // fetch in chunks until the page (+1 to know there is a next) is full.
      const chunk = r.includeDeleted ? r.limit + 1 : Math.max(r.limit + 1, 100);
      for (;;) {
        const rows =
          after === undefined
            ? (await this.db.read(desc ? this.q.listVersionsDesc : this.q.listVersionsAsc, [t, chunk])).rows
            : (await this.db.read(desc ? this.q.listVersionsDescBefore : this.q.listVersionsAscAfter, [t, after, chunk])).rows;
        for (const row of rows) {
          const rec = versionFromRow(row);
          if (r.includeDeleted || rec.deletedAt === undefined) items.push(rec);
        }
        if (rows.length < chunk || items.length > r.limit) break;
        after = reqNum(rows[rows.length - 1]?.['version']);
      }
      return pageOf(items, r.limit, (v) => encodeCursor({ v: v.version, o: r.order }));
    });
  }

  getInlineData(topic: string, blobId: string): Promise<Uint8Array | undefined> {
    return this.call('getInlineData', async () => {
      const t = guardTopicName(topic);
      const id = guardId(blobId, 'blobId');
      const data = (await this.db.readOne(this.q.getInline, [t, id]))?.['data'] as Buffer | null | undefined;
      return data === undefined || data === null ? undefined : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    });
  }

  markVersionDeleted(topic: string, version: number, at: number): Promise<void> {
    return this.call('markVersionDeleted', async () => {
      const t = guardTopicName(topic);
      const n = guardVersion(version);
      const when = guardTime(at, 'at');
      const row = await this.requireVersion(t, n);
      const rec = versionFromRow(row);
      if (rec.deletedAt === undefined) {
        // The row exists (version rows are never removed), so `IF deleted_at = null` only
        // decides between two concurrent deleters; the first time stays.
        const { applied } = await this.db.casResolved(this.q.markDeleted, [when, t, n], async () => {
          const now = await this.db.resolveRead(this.q.getVersion, [t, n], 'markVersionDeleted');
          return num(now?.['deleted_at']) === when;
        });
        if (applied) await this.recordChange(t);
      }
      // Bytes after the mark (a crash in between leaves orphan bytes a retry removes, never
      // a live version without data).
      if (rec.pointer.kind === 'inline') await this.db.write(this.q.deleteInline, [t, rec.pointer.blobId]);
    });
  }

  // ---- releases and pins -----------------------------------------------------------------------

  putRelease(release: Release): Promise<void> {
    return this.call('putRelease', async () => {
      const r = guardRelease(release);
      await this.requireVersion(r.topic, r.version);
      await this.db.write(this.q.upsertRelease, [
        r.topic,
        r.version,
        r.scopeKey,
        JSON.stringify(r.scope),
        r.releasedAt,
        r.releasedBy,
        r.runId ?? null,
      ]);
      await this.recordChange(r.topic);
    });
  }

  withdrawRelease(topic: string, version: number, scopeKey: string, at: number): Promise<void> {
    return this.call('withdrawRelease', async () => {
      const t = guardTopicName(topic);
      const n = guardVersion(version);
      const key = guardScopeKey(scopeKey);
      const when = guardTime(at, 'at');
      const row = await this.db.readOne(this.q.getRelease, [t, n, key]);
      if (row === undefined) {
        await this.requireVersion(t, n);
        throw QuireError.notFound(`release of version ${n} of topic "${t}" to scope "${key}"`, 'scopeKey');
      }
      if (num(row['withdrawn_at']) !== undefined) return;
      await this.db.write(this.q.withdrawRelease, [when, t, n, key]);
      await this.recordChange(t);
    });
  }

  listReleases(topic: string): Promise<Release[]> {
    return this.call('listReleases', async () => {
      const t = guardTopicName(topic);
      // Clustering order is (version, scope_key) ascending.
      return (await this.db.readAll(this.q.listReleases, [t])).map(releaseFromRow);
    });
  }

  putPin(pin: Pin): Promise<void> {
    return this.call('putPin', async () => {
      const p = guardPin(pin);
      await this.requireVersion(p.topic, p.version);
      const pins = (await this.db.readAll(this.q.listPins, [p.topic])).map(pinFromRow);
      if (pins.some((x) => x.pinId === p.pinId)) {
        throw new QuireError(Code.ALREADY_EXISTS, `pin "${p.pinId}" of topic "${p.topic}" already exists`, { field: 'pinId' });
      }
      // One logged batch on the topic's partition: atomic and isolated, so readers see
      // either the old pin active or the new one, never both or neither.
      await this.db.batch([
        ...pins
          .filter((x) => x.scopeKey === p.scopeKey && x.unpinnedAt === undefined)
          .map((x) => ({ query: this.q.endPin, params: [p.pinnedAt, p.pinnedBy, p.topic, x.pinId] })),
        {
          query: this.q.insertPin,
          params: [p.topic, p.pinId, p.scopeKey, JSON.stringify(p.scope), p.version, p.reason, p.pinnedBy, p.pinnedAt],
        },
      ]);
      await this.recordChange(p.topic);
    });
  }

  removePin(topic: string, scopeKey: string, at: number, by: string): Promise<Pin | undefined> {
    return this.call('removePin', async () => {
      const t = guardTopicName(topic);
      const key = guardScopeKey(scopeKey);
      const when = guardTime(at, 'at');
      const who = guardId(by, 'by');
      const active = (await this.db.readAll(this.q.listPins, [t]))
        .map(pinFromRow)
        .filter((x) => x.scopeKey === key && x.unpinnedAt === undefined)
        .sort(byPinOrder);
      const ended = active[active.length - 1];
      if (ended === undefined) return undefined;
      await this.db.batch(active.map((x) => ({ query: this.q.endPin, params: [when, who, t, x.pinId] })));
      await this.recordChange(t);
      return { ...ended, unpinnedAt: when, unpinnedBy: who };
    });
  }

  listPins(topic: string): Promise<Pin[]> {
    return this.call('listPins', async () => {
      const t = guardTopicName(topic);
      return (await this.db.readAll(this.q.listPins, [t])).map(pinFromRow).sort(byPinOrder);
    });
  }

  // ---- change feed ------------------------------------------------------------------------------

  /**
   * Changes live in minute partitions keyed by their time on the writer's clock. A call
   * reads every partition from the cursor's time (minus an overlap that absorbs clock
   * skew between writers and writes still in flight) to now (plus the overlap), and
   * skips the ids the cursor remembers from the overlap window: at-least-once delivery.
   */
  changesSince(cursor?: string): Promise<{ changes: Change[]; cursor: string }> {
    return this.call('changesSince', async () => {
      let from: number;
      let seen: Set<string>;
      if (cursor === undefined) {
        from = this.clock.now();
        seen = new Set();
      } else {
        if (typeof cursor !== 'string') throw QuireError.invalid('cursor', 'must be a string');
        const c = decodeCursor(cursor, isChangeCursor);
        from = c.t;
        seen = new Set(c.s);
      }
      const now = this.clock.now();
      const low = Math.max(from - CHANGE_OVERLAP_MS, now - CHANGE_TTL_MS);
      const high = Math.max(now, from) + CHANGE_OVERLAP_MS;
      const buckets: number[] = [];
      for (let b = Math.floor(low / CHANGE_BUCKET_MS); b <= Math.floor(high / CHANGE_BUCKET_MS); b++) buckets.push(b);
      const rows = (await mapLimit(buckets, FAN_OUT, (b) => this.db.readAll(this.q.changesAfter, [b, low]))).flat();
      const all = rows
        .map((r) => ({ id: String(r['id']), topic: String(r['topic']), at: reqNum(r['at']) }))
        .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const t = all.reduce((m, c) => Math.max(m, c.at), Math.max(now, from));
      const keep = all.filter((c) => c.at > t - CHANGE_OVERLAP_MS).map((c) => c.id);
      const next = encodeChangeCursor(t, keep.slice(-CHANGE_CURSOR_IDS_MAX));
      // A fresh cursor starts "from now on": what is already there is only remembered.
      if (cursor === undefined) return { changes: [], cursor: next };
      return { changes: all.filter((c) => !seen.has(c.id)).map(({ topic, at }) => ({ topic, at })), cursor: next };
    });
  }

  // ---- rollout runs -------------------------------------------------------------------------------

  createRun(run: RolloutRun): Promise<void> {
    return this.call('createRun', async () => {
      const r = guardRun(run);
      await this.requireTopic(r.topic);
      // Index first, so an active run is never missing from listActiveRuns; a stale entry
      // (creation failed) is dropped when read.
      if (isActiveRun(r)) await this.db.write(this.q.addActiveRun, [r.topic, r.runId]);
      const writeId = uuid();
      const { applied } = await this.db.casResolved(
        this.q.insertRun,
        [r.topic, r.runId, r.revision, r.status, r.createdAt, runData(r), writeId],
        async () => sameUuid((await this.db.resolveRead(this.q.getRun, [r.topic, r.runId], 'createRun'))?.['write_id'], writeId),
      );
      if (!applied) throw new QuireError(Code.ALREADY_EXISTS, `run "${r.runId}" of topic "${r.topic}" already exists`, { field: 'runId' });
    });
  }

  getRun(topic: string, runId: string): Promise<RolloutRun | undefined> {
    return this.call('getRun', async () => {
      const t = guardTopicName(topic);
      const id = guardId(runId, 'runId');
      const row = await this.db.readOne(this.q.getRun, [t, id]);
      return row === undefined ? undefined : runFromRow(row);
    });
  }

  listRuns(topic: string): Promise<RolloutRun[]> {
    return this.call('listRuns', async () => {
      const t = guardTopicName(topic);
      const runs = (await this.db.readAll(this.q.listRuns, [t])).map(runFromRow);
      return runs.sort((a, b) => b.createdAt - a.createdAt || cmp(b.runId, a.runId));
    });
  }

  listActiveRuns(): Promise<RolloutRun[]> {
    return this.call('listActiveRuns', async () => {
      const entries = (await this.db.readAll(this.q.listActiveRuns)).map((r) => ({ topic: String(r['topic']), runId: String(r['run_id']) }));
      const rows = await mapLimit(entries, FAN_OUT, (e) => this.db.readOne(this.q.getRun, [e.topic, e.runId]));
      const active: RolloutRun[] = [];
      const stale: { topic: string; runId: string }[] = [];
      rows.forEach((row, i) => {
        if (row === undefined) return; // being created, or a failed creation: leave it
        const run = runFromRow(row);
        if (isActiveRun(run)) active.push(run);
        else stale.push(entries[i] as { topic: string; runId: string });
      });
      await mapLimit(stale, FAN_OUT, (e) => this.db.write(this.q.removeActiveRun, [e.topic, e.runId]));
      return active.sort((a, b) => cmp(a.topic, b.topic) || a.createdAt - b.createdAt || cmp(a.runId, b.runId));
    });
  }

  updateRun(run: RolloutRun, expectedRevision: number): Promise<boolean> {
    return this.call('updateRun', async () => {
      const { run: r, expectedRevision: expected } = guardRunUpdate(run, expectedRevision);
      if (isActiveRun(r)) await this.db.write(this.q.addActiveRun, [r.topic, r.runId]);
      const writeId = uuid();
      const { applied, row } = await this.db.casResolved(
        this.q.updateRun,
        [r.revision, r.status, runData(r), writeId, r.topic, r.runId, expected],
        async () => sameUuid((await this.db.resolveRead(this.q.getRun, [r.topic, r.runId], 'updateRun'))?.['write_id'], writeId),
      );
      if (!applied) {
        // A non-applied conditional update returns the current revision (null: no row).
        if (num(row?.['revision']) === undefined) throw QuireError.notFound(`run "${r.runId}" of topic "${r.topic}"`, 'runId');
        return false;
      }
      if (!isActiveRun(r)) await this.db.write(this.q.removeActiveRun, [r.topic, r.runId]);
      return true;
    });
  }

  // ---- leases --------------------------------------------------------------------------------------

  /**
   * Free or expired: bump the fencing epoch in `lease_epochs` (LWT on the read value, so
   * each epoch is handed out once and they only grow), then take the lease row with an
   * LWT conditioned on what we read (`IF NOT EXISTS`, or `IF epoch = ? AND expires_at <= now`).
   * Held by the same owner: extended at the same epoch. Held by another: undefined.
   */
  tryAcquireLease(name: string, owner: string, ttlMs: number): Promise<Lease | undefined> {
    return this.call('tryAcquireLease', async () => {
      const req = guardLeaseRequest(name, owner, ttlMs);
      const now = this.clock.now();
      const expiresAt = now + req.ttlMs;
      const ttlS = leaseRowTtlS(req.ttlMs);
      const row = (await this.db.serialRead(this.q.getLease, [req.name])).first() ?? undefined;
      if (row !== undefined && reqNum(row['expires_at']) > now) {
        if (str(row['owner']) !== req.owner) return undefined;
        const epoch = reqNum(row['epoch']);
        return this.extendLease({ name: req.name, owner: req.owner, epoch, expiresAt: Math.max(reqNum(row['expires_at']), expiresAt) }, ttlS, now);
      }
      const epochRow = (await this.db.serialRead(this.q.getLeaseEpoch, [req.name])).first() ?? undefined;
      const lastEpoch = num(epochRow?.['epoch']);
      const epoch = Math.max(lastEpoch ?? 0, num(row?.['epoch']) ?? 0) + 1;
      const epochWriteId = uuid();
      const bumped = await this.db.casResolved(
        lastEpoch === undefined ? this.q.insertLeaseEpoch : this.q.bumpLeaseEpoch,
        lastEpoch === undefined ? [req.name, epoch, epochWriteId] : [epoch, epochWriteId, req.name, lastEpoch],
        async () => sameUuid((await this.db.resolveRead(this.q.getLeaseEpoch, [req.name], 'tryAcquireLease'))?.['write_id'], epochWriteId),
      );
      if (!bumped.applied) return undefined; // a contender is acquiring right now
      const taken = await this.db.casResolved(
        row === undefined ? this.q.insertLease : this.q.takeLease,
        row === undefined
          ? [req.name, req.owner, epoch, expiresAt, ttlS]
          : [ttlS, req.owner, epoch, expiresAt, req.name, reqNum(row['epoch']), now],
        async () => {
          const cur = await this.db.resolveRead(this.q.getLease, [req.name], 'tryAcquireLease');
          return str(cur?.['owner']) === req.owner && num(cur?.['epoch']) === epoch;
        },
      );
      return taken.applied ? { name: req.name, owner: req.owner, epoch, expiresAt } : undefined;
    });
  }

  /** `UPDATE … IF owner = ? AND epoch = ? AND expires_at > now`, resolving an unknown outcome. */
  private async extendLease(next: Lease, ttlS: number, now: number): Promise<Lease | undefined> {
    const { applied } = await this.db.casResolved(
      this.q.renewLease,
      [ttlS, next.owner, next.epoch, next.expiresAt, next.name, next.owner, next.epoch, now],
      async () => {
        const cur = await this.db.resolveRead(this.q.getLease, [next.name], 'renewLease');
        return str(cur?.['owner']) === next.owner && num(cur?.['epoch']) === next.epoch && num(cur?.['expires_at']) === next.expiresAt;
      },
    );
    return applied ? next : undefined;
  }

  renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    return this.call('renewLease', async () => {
      const l = guardLease(lease);
      const ttl = guardTtl(ttlMs);
      const now = this.clock.now();
      return this.extendLease({ ...l, expiresAt: Math.max(l.expiresAt, now + ttl) }, leaseRowTtlS(ttl), now);
    });
  }

  releaseLease(lease: Lease): Promise<void> {
    return this.call('releaseLease', async () => {
      const l = guardLease(lease);
      await this.db.casResolved(this.q.releaseLease, [LEASE_ROW_GRACE_S, l.owner, l.epoch, l.name, l.owner, l.epoch], async () => {
        const cur = await this.db.resolveRead(this.q.getLease, [l.name], 'releaseLease');
        // Done when it is no longer ours to release (released, or someone else's now).
        return !(str(cur?.['owner']) === l.owner && num(cur?.['epoch']) === l.epoch && reqNum(cur?.['expires_at']) > 0);
      });
    });
  }

  getLease(name: string): Promise<Lease | undefined> {
    return this.call('getLease', async () => {
      const n = guardId(name, 'name');
      const row = (await this.db.serialRead(this.q.getLease, [n])).first() ?? undefined;
      if (row === undefined || reqNum(row['expires_at']) <= this.clock.now()) return undefined;
      return { name: n, owner: String(row['owner']), epoch: reqNum(row['epoch']), expiresAt: reqNum(row['expires_at']) };
    });
  }

  // ---- audit ------------------------------------------------------------------------------------------

  appendAudit(entry: AuditEntry): Promise<void> {
    return this.call('appendAudit', async () => {
      const e = guardAuditEntry(entry);
      const day = Math.floor(e.at / AUDIT_DAY_MS);
      const cols = [e.at, e.id, e.actor, e.action, e.reason ?? null, JSON.stringify(e.details)];
      // Logged batch: both listings get the entry or neither does. (at, id) is the key,
      // so appending the same entry again is a no-op.
      await this.db.batch([
        { query: this.q.insertAuditByDay, params: [day, e.topic ?? null, ...cols] },
        { query: this.q.insertAuditDay, params: [day] },
        ...(e.topic === undefined ? [] : [{ query: this.q.insertAuditByTopic, params: [e.topic, ...cols] }]),
      ]);
    });
  }

  /**
   * Newest first. By topic: one partition. Otherwise the day partitions listed in
   * `audit_days`, newest first. The cursor is the (at, id) of the last entry returned.
   */
  listAudit(query?: AuditQuery): Promise<Page<AuditEntry>> {
    return this.call('listAudit', async () => {
      const q = guardAuditQuery(query);
      // Exclusive upper bound as an (at, id) tuple: `until` is exclusive; ids are ≥ ''.
      let upper: [number, string] = [q.until ?? MAX_TIME, ''];
      if (q.cursor !== undefined) {
        const c = decodeCursor(q.cursor, isAuditCursor);
        if (c.a < upper[0] || (c.a === upper[0] && c.i < upper[1])) upper = [c.a, c.i];
      }
      const since = q.since ?? 0;
      const want = q.limit + 1;
      const items: AuditEntry[] = [];
      if (q.topic !== undefined) {
        const rows = (await this.db.read(this.q.auditByTopic, [q.topic, upper[0], upper[1], since, want])).rows;
        items.push(...rows.map(auditFromRow));
      } else if (upper[0] >= since) {
        const days = (
          await this.db.readAll(this.q.auditDays, [Math.floor(upper[0] / AUDIT_DAY_MS), Math.floor(since / AUDIT_DAY_MS)])
        ).map((r) => reqNum(r['day']));
        for (const day of days) {
          const rows = (await this.db.read(this.q.auditByDay, [day, upper[0], upper[1], since, want - items.length])).rows;
          items.push(...rows.map(auditFromRow));
          if (items.length >= want) break;
        }
      }
      return pageOf(items, q.limit, (e) => encodeCursor({ a: e.at, i: e.id }));
    });
  }

  // ---- API tokens ---------------------------------------------------------------------------------

  createToken(token: ApiToken): Promise<void> {
    return this.call('createToken', async () => {
      const t = guardToken(token);
      const data = tokenToJson(t);
      const { applied } = await this.db.casResolved(this.q.insertToken, [t.id, data], async () =>
        (await this.db.resolveRead(this.q.getToken, [t.id], 'createToken'))?.['data'] === data,
      );
      if (!applied) throw new QuireError(Code.ALREADY_EXISTS, `token ${t.id} already exists`, { field: 'id' });
    });
  }

  getToken(id: string): Promise<ApiToken | undefined> {
    return this.call('getToken', async () => {
      const row = await this.db.readOne(this.q.getToken, [guardTokenId(id)]);
      return row === undefined ? undefined : tokenFromJson(String(row['data']));
    });
  }

  listTokens(): Promise<ApiToken[]> {
    return this.call('listTokens', async () => (await this.db.readAll(this.q.listTokens)).map((r) => tokenFromJson(String(r['data']))));
  }

  /** Compare-and-set on the whole record: a concurrent revocation makes us re-read, and the first one stands. */
  revokeToken(id: string, at: number, by: string): Promise<ApiToken> {
    return this.call('revokeToken', async () => {
      const i = guardTokenId(id);
      const when = guardTime(at, 'at');
      const who = guardId(by, 'by');
      for (;;) {
        const row = (await this.db.serialRead(this.q.getToken, [i])).first() ?? undefined;
        if (row === undefined) throw QuireError.notFound(`token ${i}`, 'id');
        const before = String(row['data']);
        const current = tokenFromJson(before);
        if (current.revokedAt !== undefined) return current;
        const next = revoked(current, when, who);
        const data = tokenToJson(next);
        const { applied } = await this.db.casResolved(this.q.updateToken, [data, i, before], async () =>
          (await this.db.resolveRead(this.q.getToken, [i], 'revokeToken'))?.['data'] === data,
        );
        if (applied) return next;
      }
    });
  }

  // ---- fleet reports --------------------------------------------------------------------------------

  putFleetReports(reports: readonly FleetReport[]): Promise<void> {
    return this.call('putFleetReports', async () => {
      const rs = guardFleetReports(reports);
      await mapLimit(rs, FAN_OUT, (r) =>
        this.db.write(this.q.upsertFleetReport, [
          r.topic,
          r.instance,
          JSON.stringify(r.identity),
          r.version,
          r.failedVersion ?? null,
          r.error ?? null,
          r.reportedAt,
          FLEET_REPORT_TTL_S,
        ]),
      );
    });
  }

  listFleetReports(topic: string, since?: number): Promise<FleetReport[]> {
    return this.call('listFleetReports', async () => {
      const t = guardTopicName(topic);
      const from = guardOptionalTime(since, 'since') ?? 0;
      // Clustering order is by instance.
      return (await this.db.readAll(this.q.listFleetReports, [t])).map(fleetFromRow).filter((r) => r.reportedAt >= from);
    });
  }
}

// ---- helpers ---------------------------------------------------------------------------------------------

/** Jittered, growing pause after a lost version race: up to 4, 8, 16, 32, 64, then 100 ms. */
function commitBackoffMs(attempt: number): number {
  return Math.random() * Math.min(100, 2 * 2 ** Math.min(attempt, 6));
}

/** A lease row outlives its expiry by a day before the TTL removes it (the epoch is kept elsewhere). */
function leaseRowTtlS(ttlMs: number): number {
  return Math.ceil(ttlMs / 1000) + LEASE_ROW_GRACE_S;
}


function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byPinOrder(a: Pin, b: Pin): number {
  return a.pinnedAt - b.pinnedAt || cmp(a.pinId, b.pinId);
}

function encodeChangeCursor(t: number, ids: string[]): string {
  return Buffer.from(JSON.stringify({ t, s: ids }), 'utf8').toString('base64url');
}

/** A page from `limit + 1` fetched items: the extra item only says there is a next page. */
function pageOf<T>(rows: T[], limit: number, cursorOf: (last: T) => string): Page<T> {
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  return { items, next: cursorOf(items[items.length - 1] as T) };
}

/** `Promise.all` over `items` with at most `limit` calls in flight. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
