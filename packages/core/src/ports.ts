/**
 * The ports Quire's services depend on, in domain types. Adapters live in their own
 * packages (`@quire/metadata-store`, `@quire/blob-store`); each port has one contract
 * test suite that every adapter passes.
 *
 * Errors: adapters throw `QuireError` only — INVALID_ARGUMENT (bad input, naming the
 * field), NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED (lost a compare-and-set
 * race the caller may retry), UNAVAILABLE (the database / S3 cannot be reached; retryable),
 * DEADLINE_EXCEEDED, INTERNAL.
 */
import type { Readable } from 'node:stream';
import type { ApiToken } from './access.ts';
import type {
  AuditEntry,
  BlobLocation,
  Change,
  FleetReport,
  Lease,
  NewVersion,
  Page,
  PageRequest,
  Pin,
  Release,
  RolloutRun,
  Topic,
  VersionRecord,
} from './model.ts';

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface ListVersionsRequest extends PageRequest {
  /** Newest first (default) or oldest first. */
  order?: 'desc' | 'asc';
  /** Include versions deleted by retention (default true: history shows them as deleted). */
  includeDeleted?: boolean;
}

/** A topic's name and state stamp (`MetadataStore.listTopicStamps`). */
export interface TopicStamp {
  name: string;
  /** Opaque; absent for a topic last written before stamps existed (always reload it). */
  stamp?: string;
}

export interface AuditQuery extends PageRequest {
  topic?: string;
  /** Only entries at or after `since` (inclusive) and before `until` (exclusive). */
  since?: number;
  until?: number;
}

export interface MetadataStore {
  /** Create keyspace/tables (versioned migrations) if needed. Idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // ---- topics -------------------------------------------------------------
  /** ALREADY_EXISTS when the name is taken. The topic is stored with revision 1. */
  createTopic(topic: Topic): Promise<Topic>;
  getTopic(name: string): Promise<Topic | undefined>;
  /** Paged, ordered by name. */
  listTopics(page?: PageRequest): Promise<Page<Topic>>;
  /**
   * Every topic's name and state stamp, paged, ordered by name: the cheap listing a cache
   * refreshes from (docs/adr/0008-topic-state-stamps.md). The stamp is an opaque string
   * replaced by every write that records a change for the topic (createTopic, updateTopic,
   * commitVersion, markVersionDeleted, putRelease, withdrawRelease, putPin, removePin),
   * written after (or atomically with) the state it stamps; reads never change it. So a
   * reader that reads the stamp, then the topic's state, holds state at least as new as
   * that stamp: while the stamp stays the same, the state it read is current. May include
   * a name whose topic does not exist (a creation cut short): `getTopic` says so.
   */
  listTopicStamps(page?: PageRequest): Promise<Page<TopicStamp>>;
  /**
   * Replace the topic's settings if its stored revision is `expectedRevision`; stores
   * revision + 1 and returns it. NOT_FOUND for an unknown topic, ABORTED when the revision moved.
   */
  updateTopic(topic: Topic, expectedRevision: number): Promise<Topic>;

  // ---- versions -----------------------------------------------------------
  /**
   * Allocate the next version number of `v.topic` (head + 1; no gaps, no duplicates, even
   * with concurrent writers in several processes) and store the version; for an inline
   * pointer, `inline` holds the bytes, stored first under (topic, pointer.blobId).
   * Idempotent on `publishId`: committing a publishId that already has a version returns
   * that version. NOT_FOUND for an unknown topic. Records a change for the topic.
   */
  commitVersion(v: NewVersion, inline?: Uint8Array): Promise<VersionRecord>;
  getVersion(topic: string, version: number): Promise<VersionRecord | undefined>;
  /** Several versions at once (missing ones are left out). */
  getVersions(topic: string, versions: readonly number[]): Promise<VersionRecord[]>;
  /** Highest version number of the topic (0 when none). */
  headVersion(topic: string): Promise<number>;
  listVersions(topic: string, req?: ListVersionsRequest): Promise<Page<VersionRecord>>;
  /** Inline bytes of a version; undefined when missing. */
  getInlineData(topic: string, blobId: string): Promise<Uint8Array | undefined>;
  /** Mark a version deleted (its inline bytes are removed). Idempotent. Records a change. */
  markVersionDeleted(topic: string, version: number, at: number): Promise<void>;

  // ---- releases and pins ---------------------------------------------------
  /**
   * Release a version to a scope (upsert on (topic, version, scopeKey); re-releasing a
   * withdrawn one makes it active again). NOT_FOUND for an unknown version. Records a change.
   */
  putRelease(release: Release): Promise<void>;
  /** Withdraw a release (sets withdrawnAt). Idempotent. Records a change. */
  withdrawRelease(topic: string, version: number, scopeKey: string, at: number): Promise<void>;
  /** Every release of the topic, withdrawn ones included. */
  listReleases(topic: string): Promise<Release[]>;
  /**
   * Add a pin. An active pin on the same scopeKey is ended (unpinnedAt = pin.pinnedAt,
   * unpinnedBy = pin.pinnedBy) in the same step. Records a change.
   */
  putPin(pin: Pin): Promise<void>;
  /** End the active pin on this scope, if any. Returns the ended pin. Records a change. */
  removePin(topic: string, scopeKey: string, at: number, by: string): Promise<Pin | undefined>;
  /** Every pin of the topic, ended ones included (its pin history). */
  listPins(topic: string): Promise<Pin[]>;

  // ---- change feed (the consume service's prompt refresh) ------------------
  /**
   * Changes recorded after `cursor` (opaque; undefined = from now on, returns no changes
   * and a starting cursor). A topic may appear more than once; callers refresh it.
   */
  changesSince(cursor?: string): Promise<{ changes: Change[]; cursor: string }>;

  // ---- rollout runs -------------------------------------------------------
  /** ALREADY_EXISTS when (topic, runId) exists. */
  createRun(run: RolloutRun): Promise<void>;
  getRun(topic: string, runId: string): Promise<RolloutRun | undefined>;
  /** The topic's runs, newest first. */
  listRuns(topic: string): Promise<RolloutRun[]>;
  /** Runs in status running or paused, across all topics (for the scheduler). */
  listActiveRuns(): Promise<RolloutRun[]>;
  /**
   * Store `run` if the stored revision is `expectedRevision` (compare-and-set); false when
   * another writer got there first. `run.revision` should be expectedRevision + 1.
   */
  updateRun(run: RolloutRun, expectedRevision: number): Promise<boolean>;

  // ---- leases (leader election) -------------------------------------------
  /**
   * Take the lease when free or expired. Returns it with an epoch higher than any earlier
   * holder's, or undefined when someone else holds it. The holder must stop acting before
   * `expiresAt` unless renewed.
   */
  tryAcquireLease(name: string, owner: string, ttlMs: number): Promise<Lease | undefined>;
  /** Extend a lease still held by `lease.owner` at `lease.epoch`; undefined when lost. */
  renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined>;
  /** Give the lease up if still held (so another replica can take it at once). */
  releaseLease(lease: Lease): Promise<void>;
  /** Current holder, if any (for health / UI). */
  getLease(name: string): Promise<Lease | undefined>;

  // ---- audit --------------------------------------------------------------
  appendAudit(entry: AuditEntry): Promise<void>;
  /** Newest first, paged; filtered by topic and time range when given. */
  listAudit(query?: AuditQuery): Promise<Page<AuditEntry>>;

  // ---- API tokens (access control; the secret is never stored, only its hash) ----
  /** Store a new token. ALREADY_EXISTS when the id is taken. */
  createToken(token: ApiToken): Promise<void>;
  getToken(id: string): Promise<ApiToken | undefined>;
  /** Every token, revoked ones included, ordered by id. */
  listTokens(): Promise<ApiToken[]>;
  /**
   * Mark a token revoked; repeating keeps the first time and revoker. Returns the stored
   * token; NOT_FOUND for an unknown id.
   */
  revokeToken(id: string, at: number, by: string): Promise<ApiToken>;

  // ---- fleet reports (aggregated by consume instances, written periodically) --
  /** Upsert on (topic, instance). */
  putFleetReports(reports: readonly FleetReport[]): Promise<void>;
  /** Reports of a topic received at or after `since` (default: all kept). */
  listFleetReports(topic: string, since?: number): Promise<FleetReport[]>;
}

export interface BlobPutOptions {
  /** Regions to write to (default: every configured region). */
  regions?: readonly string[];
  contentType?: string;
  /** Size in bytes when known (progress totals, sanity check). */
  size?: number;
  /** Called as bytes are consumed from the source. */
  onProgress?: (progress: { loaded: number; total?: number }) => void;
  /** Object metadata stored with the blob (x-amz-meta-*). */
  metadata?: Record<string, string>;
}

export interface BlobPutResult {
  size: number;
  /** Lowercase hex SHA-256 of the bytes, computed while streaming. */
  sha256: string;
  locations: BlobLocation[];
}

export interface BlobHead {
  region: string;
  size: number;
  contentType?: string;
  metadata: Record<string, string>;
}

export interface BlobGetOptions {
  /** Regions to try, in order (default: every configured region, in configuration order). */
  regions?: readonly string[];
}

export interface BlobGetResult {
  region: string;
  size: number;
  body: Readable;
}

export interface BlobListEntry {
  key: string;
  size: number;
  lastModified: number;
}

export interface BlobStore {
  /** Names of the configured regions, in configuration order. */
  readonly regions: readonly string[];
  /** The bucket (or directory name) used in a region, for BlobLocation. */
  bucketOf(region: string): string;
  /** Create buckets / directories if needed. Idempotent. */
  init(): Promise<void>;
  /**
   * Stream `body` to `key` in every chosen region at once (never buffering a whole large
   * object in memory); the object appears only when complete. INVALID_ARGUMENT for an
   * unsafe key or unknown region.
   */
  put(key: string, body: Readable | Uint8Array, options?: BlobPutOptions): Promise<BlobPutResult>;
  /** Open the object from the first region that has it; NOT_FOUND when none has it. */
  get(key: string, options?: BlobGetOptions): Promise<BlobGetResult>;
  /** Size and metadata in one region; undefined when the object is missing there. */
  head(key: string, region: string): Promise<BlobHead | undefined>;
  /** Delete from the given regions (default all). Missing objects are not an error. */
  delete(key: string, regions?: readonly string[]): Promise<void>;
  /** Objects under a prefix in one region (for the orphan sweep). */
  list(prefix: string, region: string): AsyncIterable<BlobListEntry>;
}
