/**
 * Domain types. Times are milliseconds since the Unix epoch (numbers); versions are
 * positive integers, strictly increasing per topic.
 */

/** string → string metadata attached to a version. */
export type Metadata = Record<string, string>;

/** A consumer's identity: `region`, `application`, `cluster`, `instance`, plus free-form attributes. */
export type ConsumerIdentity = Record<string, string>;

/** A selector over consumer identity: every attribute listed must equal the consumer's. `{}` is global. */
export type Scope = Record<string, string>;

export interface RetentionPolicy {
  /** Keep at least the newest N versions (by number). */
  keepLast?: number;
  /** Keep every version younger than this many milliseconds. */
  maxAgeMs?: number;
}

export interface RolloutStage {
  name?: string;
  scope: Scope;
  /**
   * How long the previous stage bakes before this one is released, in ms. The first
   * stage is released at once (its bake time is ignored by the scheduler).
   */
  bakeMs: number;
}

export interface HealthGate {
  /** Stop when failed / instances in the current stage passes this share (0 < x ≤ 1). */
  maxFailureRatio: number;
  /** ... over at least this many reporting instances. */
  minInstances: number;
  /** What the run does by itself when the gate trips. */
  action: 'pause' | 'rollback';
}

export interface RolloutPlan {
  stages: RolloutStage[];
  health?: HealthGate;
}

export interface Topic {
  name: string;
  owner: string;
  description: string;
  retention: RetentionPolicy;
  /** Payloads up to this many bytes are stored inline in the metadata store. */
  inlineThresholdBytes: number;
  rolloutPlan?: RolloutPlan;
  /** Optional JSON Schema (as JSON text) that JSON payloads must satisfy. */
  jsonSchema?: string;
  /** When set, only these applications may subscribe. */
  allowedApplications?: string[];
  /** Payload encryption: publishers encrypt before upload, consumers with the key decrypt (see core/encryption.ts). */
  encryption?: TopicEncryption;
  createdAt: number;
  updatedAt: number;
  /** Bumped on every update; used for compare-and-set updates. */
  revision: number;
}

/** Envelope encryption of a topic's payloads: a data key per version, wrapped under `keyId`. */
export interface TopicEncryption {
  algorithm: 'aes-256-gcm';
  /** The key-encryption key's id in the key provider (local keyring, KMS). */
  keyId: string;
}

export interface BlobLocation {
  region: string;
  bucket: string;
  key: string;
}

/** Where a version's bytes live. */
export type DataPointer =
  | { kind: 'inline'; blobId: string }
  | { kind: 's3'; locations: BlobLocation[] };

export interface VersionRecord {
  topic: string;
  version: number;
  /** Unique id of the publish call that created this version (idempotency key). */
  publishId: string;
  createdAt: number;
  publisher: string;
  metadata: Metadata;
  contentType: string;
  size: number;
  /** Lowercase hex SHA-256 of the payload bytes. */
  sha256: string;
  pointer: DataPointer;
  /** Set when retention (or an operator) deleted the version; its data is gone. */
  deletedAt?: number;
}

/** Everything of a version except its number, which the store allocates. */
export type NewVersion = Omit<VersionRecord, 'version' | 'deletedAt'>;

export interface Release {
  topic: string;
  version: number;
  scope: Scope;
  /** Canonical form of `scope` (see `scopeKey`). */
  scopeKey: string;
  releasedAt: number;
  releasedBy: string;
  /** Rollout run that made this release, if any. */
  runId?: string;
  /** Set when the release was withdrawn (rollout abort); it no longer applies after this time. */
  withdrawnAt?: number;
}

export interface Pin {
  topic: string;
  /** Unique id of this pin (a topic's pin history is a list of these). */
  pinId: string;
  scope: Scope;
  scopeKey: string;
  version: number;
  reason: string;
  pinnedBy: string;
  pinnedAt: number;
  /** Set when unpinned or replaced by a newer pin on the same scope. */
  unpinnedAt?: number;
  unpinnedBy?: string;
}

export type RunStatus = 'running' | 'paused' | 'completed' | 'aborted' | 'rolled_back';

export interface RolloutRun {
  topic: string;
  runId: string;
  version: number;
  plan: RolloutPlan;
  status: RunStatus;
  /** Index of the last stage released; -1 before stage 1 is released. */
  stageIndex: number;
  /** When the current stage was released (or, after a resume, the bake clock's start). */
  stageReleasedAt: number;
  pausedAt?: number;
  /** Why the run paused / stopped / rolled back (operator's reason or the health gate's). */
  reason?: string;
  createdAt: number;
  updatedAt: number;
  startedBy: string;
  /**
   * Fencing epoch of the scheduler lease under which the run was last written by the
   * scheduler (absent before). A scheduler step writes only a run whose epoch is not above
   * its own, and stamps its own: with the compare-and-set on `revision`, a leader that lost
   * its lease (a newer one wrote since) can no longer change the run.
   */
  epoch?: number;
  /** Bumped on every change; stores update runs with compare-and-set on it. */
  revision: number;
}

export interface Lease {
  name: string;
  owner: string;
  /** Fencing epoch: strictly increases each time the lease changes hands. */
  epoch: number;
  /** Expiry time on the holder's clock (acquired-at + ttl). Stop acting before it. */
  expiresAt: number;
}

export interface AuditEntry {
  id: string;
  at: number;
  actor: string;
  action: string;
  topic?: string;
  reason?: string;
  /** Free-form JSON-serialisable details (version numbers, scopes, settings changed). */
  details: Record<string, unknown>;
}

export interface FleetReport {
  topic: string;
  instance: string;
  identity: ConsumerIdentity;
  /** Version the instance runs (0 = none yet). */
  version: number;
  /** Version it last tried to apply and failed, if the last attempt failed. */
  failedVersion?: number;
  error?: string;
  reportedAt: number;
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page; absent on the last page. */
  next?: string;
}

export interface PageRequest {
  limit?: number;
  cursor?: string;
}

export interface Change {
  topic: string;
  at: number;
}
