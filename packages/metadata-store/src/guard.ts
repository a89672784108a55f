/**
 * Input checks at the MetadataStore boundary, shared by every adapter (embedded, Cassandra):
 * each public method calls the matching guard first, so bad input is refused with
 * INVALID_ARGUMENT naming the field, and nothing is written. Guards return a normalised copy
 * (defaults applied, unknown keys dropped) that the adapter stores.
 *
 * Also here: the opaque page-cursor codec (base64url JSON), so a malformed cursor is an
 * INVALID_ARGUMENT on `cursor` in every adapter.
 */
import {
  Code,
  LIMITS,
  QuireError,
  scopeKey,
  validateBlobKey,
  validateInlineThreshold,
  validateMetadata,
  validatePageLimit,
  validateRetention,
  validateRolloutPlan,
  validateScope,
  validateSha256,
  validateTopicEncryption,
  validateTopicName,
  validateVersionNumber,
} from '@quire/core';
import type {
  AuditEntry,
  AuditQuery,
  BlobLocation,
  DataPointer,
  FleetReport,
  Lease,
  ListVersionsRequest,
  NewVersion,
  PageRequest,
  Pin,
  Release,
  RolloutRun,
  RunStatus,
  Topic,
} from '@quire/core';

/** Bounds of free-text fields the core's LIMITS do not cover. */
export const STORE_LIMITS = {
  idMax: 200,
  textMax: 4096,
  jsonSchemaMax: 256 * 1024,
  allowedApplicationsMax: 1000,
  auditDetailsBytesMax: 64 * 1024,
  fleetReportsPerCallMax: 1000,
  leaseTtlMaxMs: 24 * 3600 * 1000,
} as const;

const RUN_STATUSES: readonly RunStatus[] = ['running', 'paused', 'completed', 'aborted', 'rolled_back'];

// ---- primitives ------------------------------------------------------------

export function guardTopicName(name: unknown, field = 'topic'): string {
  return validateTopicName(name, field);
}

export function guardVersion(version: unknown, field = 'version'): number {
  return validateVersionNumber(version, field);
}

/** A time in ms since the epoch (a non-negative safe integer). */
export function guardTime(at: unknown, field: string): number {
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) {
    throw QuireError.invalid(field, 'must be a time in milliseconds since the epoch (a non-negative integer)');
  }
  return at;
}

export function guardOptionalTime(at: unknown, field: string): number | undefined {
  return at === undefined || at === null ? undefined : guardTime(at, field);
}

/** A string of at most `max` characters; non-empty unless `allowEmpty`. */
export function guardText(value: unknown, field: string, opts: { max?: number; allowEmpty?: boolean } = {}): string {
  const max = opts.max ?? STORE_LIMITS.textMax;
  if (typeof value !== 'string') throw QuireError.invalid(field, 'must be a string');
  if (value.length === 0 && !opts.allowEmpty) throw QuireError.invalid(field, 'is required');
  if (value.length > max) throw QuireError.invalid(field, `must be at most ${max} characters`);
  return value;
}

export function guardOptionalText(value: unknown, field: string, opts: { max?: number; allowEmpty?: boolean } = {}): string | undefined {
  return value === undefined || value === null ? undefined : guardText(value, field, opts);
}

/** An identifier (publishId, pinId, runId, owner, …): 1-200 characters. */
export function guardId(value: unknown, field: string): string {
  return guardText(value, field, { max: STORE_LIMITS.idMax });
}

function guardInteger(value: unknown, field: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw QuireError.invalid(field, `must be an integer of ${min} or more`);
  }
  return value;
}

/** A compare-and-set revision the caller expects to find stored. */
export function guardRevision(revision: unknown, field = 'expectedRevision'): number {
  return guardInteger(revision, field, 0);
}

export function guardScopeKey(key: unknown, field = 'scopeKey'): string {
  return guardText(key, field, { allowEmpty: true });
}

/** A scope and its canonical key, which must agree. */
function guardScopePair(scope: unknown, key: unknown): { scope: Release['scope']; scopeKey: string } {
  const s = validateScope(scope, 'scope');
  const k = guardScopeKey(key);
  const canonical = scopeKey(s);
  if (k !== canonical) throw QuireError.invalid('scopeKey', `"${k}" is not the canonical key of scope (expected "${canonical}")`);
  return { scope: s, scopeKey: k };
}

// ---- paging ------------------------------------------------------------------

export interface GuardedPage {
  limit: number;
  cursor?: string;
}

export function guardPage(page: PageRequest | undefined, dflt = 100): GuardedPage {
  const limit = validatePageLimit(page?.limit, dflt);
  const cursor = page?.cursor;
  if (cursor === undefined || cursor === null || cursor === '') return { limit };
  if (typeof cursor !== 'string') throw QuireError.invalid('cursor', 'must be a string');
  return { limit, cursor };
}

export interface GuardedListVersions extends GuardedPage {
  order: 'desc' | 'asc';
  includeDeleted: boolean;
}

export function guardListVersions(req: ListVersionsRequest | undefined): GuardedListVersions {
  const page = guardPage(req);
  const order = req?.order ?? 'desc';
  if (order !== 'desc' && order !== 'asc') throw QuireError.invalid('order', 'must be "desc" or "asc"');
  const includeDeleted = req?.includeDeleted ?? true;
  if (typeof includeDeleted !== 'boolean') throw QuireError.invalid('includeDeleted', 'must be a boolean');
  return { ...page, order, includeDeleted };
}

export interface GuardedAuditQuery extends GuardedPage {
  topic?: string;
  since?: number;
  until?: number;
}

export function guardAuditQuery(query: AuditQuery | undefined): GuardedAuditQuery {
  const out: GuardedAuditQuery = guardPage(query);
  if (query?.topic !== undefined) out.topic = guardTopicName(query.topic);
  const since = guardOptionalTime(query?.since, 'since');
  const until = guardOptionalTime(query?.until, 'until');
  if (since !== undefined) out.since = since;
  if (until !== undefined) out.until = until;
  return out;
}

/** Encode a cursor position as an opaque base64url string. */
export function encodeCursor(position: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

/**
 * Decode a cursor made by `encodeCursor`; `check` says whether the decoded value has the
 * expected shape. INVALID_ARGUMENT on `cursor` for anything else.
 */
export function decodeCursor<T>(cursor: string, check: (value: Record<string, unknown>) => value is Record<string, unknown> & T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !check(value as Record<string, unknown>)) {
    throw QuireError.invalid('cursor', 'is not a cursor returned by this store');
  }
  return value as T;
}

// ---- topics --------------------------------------------------------------------

/** A topic to create or update; `revision` is ignored (the store sets it). */
export function guardTopic(topic: Topic): Topic {
  if (typeof topic !== 'object' || topic === null) throw QuireError.invalid('topic', 'is required');
  const out: Topic = {
    name: validateTopicName(topic.name, 'name'),
    owner: guardText(topic.owner, 'owner', { max: STORE_LIMITS.idMax, allowEmpty: true }),
    description: guardText(topic.description ?? '', 'description', { allowEmpty: true }),
    retention: validateRetention(topic.retention),
    inlineThresholdBytes: validateInlineThreshold(topic.inlineThresholdBytes),
    createdAt: guardTime(topic.createdAt, 'createdAt'),
    updatedAt: guardTime(topic.updatedAt, 'updatedAt'),
    revision: typeof topic.revision === 'number' ? topic.revision : 0,
  };
  if (topic.rolloutPlan !== undefined && topic.rolloutPlan !== null) {
    out.rolloutPlan = validateRolloutPlan(topic.rolloutPlan, 'rolloutPlan');
  }
  const schema = guardOptionalText(topic.jsonSchema, 'jsonSchema', { max: STORE_LIMITS.jsonSchemaMax });
  if (schema !== undefined) out.jsonSchema = schema;
  if (topic.allowedApplications !== undefined && topic.allowedApplications !== null) {
    if (!Array.isArray(topic.allowedApplications)) throw QuireError.invalid('allowedApplications', 'must be a list of application names');
    if (topic.allowedApplications.length > STORE_LIMITS.allowedApplicationsMax) {
      throw QuireError.invalid('allowedApplications', `must list at most ${STORE_LIMITS.allowedApplicationsMax} applications`);
    }
    out.allowedApplications = topic.allowedApplications.map((a, i) => guardId(a, `allowedApplications[${i}]`));
  }
  const encryption = validateTopicEncryption(topic.encryption);
  if (encryption !== undefined) out.encryption = encryption;
  return out;
}

// ---- versions --------------------------------------------------------------------

function guardPointer(pointer: DataPointer): DataPointer {
  if (typeof pointer !== 'object' || pointer === null) throw QuireError.invalid('pointer', 'is required');
  if (pointer.kind === 'inline') {
    return { kind: 'inline', blobId: validateBlobKey(pointer.blobId, 'pointer.blobId') };
  }
  if (pointer.kind === 's3') {
    if (!Array.isArray(pointer.locations) || pointer.locations.length === 0) {
      throw QuireError.invalid('pointer.locations', 'must list at least one location');
    }
    const regions = new Set<string>();
    const locations = pointer.locations.map((l: BlobLocation, i): BlobLocation => {
      const f = `pointer.locations[${i}]`;
      if (typeof l !== 'object' || l === null) throw QuireError.invalid(f, 'must be an object');
      const region = guardId(l.region, `${f}.region`);
      if (regions.has(region)) throw QuireError.invalid(`${f}.region`, `repeats region "${region}"`);
      regions.add(region);
      return { region, bucket: guardId(l.bucket, `${f}.bucket`), key: validateBlobKey(l.key, `${f}.key`) };
    });
    return { kind: 's3', locations };
  }
  throw QuireError.invalid('pointer.kind', 'must be "inline" or "s3"');
}

/**
 * A version to commit and its inline bytes: the bytes are required for an inline pointer
 * (and must be `size` long, at most LIMITS.inlineThresholdMax), refused for an S3 pointer.
 */
export function guardNewVersion(v: NewVersion, inline?: Uint8Array): NewVersion {
  if (typeof v !== 'object' || v === null) throw QuireError.invalid('version', 'is required');
  const out: NewVersion = {
    topic: guardTopicName(v.topic),
    publishId: guardId(v.publishId, 'publishId'),
    createdAt: guardTime(v.createdAt, 'createdAt'),
    publisher: guardId(v.publisher, 'publisher'),
    metadata: validateMetadata(v.metadata),
    contentType: guardId(v.contentType, 'contentType'),
    size: guardInteger(v.size, 'size', 0),
    sha256: validateSha256(v.sha256),
    pointer: guardPointer(v.pointer),
  };
  if (out.pointer.kind === 'inline') {
    if (!(inline instanceof Uint8Array)) throw QuireError.invalid('inline', 'bytes are required for an inline pointer');
    if (inline.byteLength > LIMITS.inlineThresholdMax) {
      throw QuireError.invalid('inline', `is ${inline.byteLength} bytes, at most ${LIMITS.inlineThresholdMax} can be stored inline`);
    }
    if (inline.byteLength !== out.size) {
      throw QuireError.invalid('size', `is ${out.size} but the inline bytes are ${inline.byteLength} bytes long`);
    }
  } else if (inline !== undefined) {
    throw QuireError.invalid('inline', 'must be absent for an s3 pointer');
  }
  return out;
}

/** The version numbers of a getVersions call: each ≥ 1, at most LIMITS.pageLimitMax of them. */
export function guardVersionList(versions: readonly number[], field = 'versions'): number[] {
  if (!Array.isArray(versions)) throw QuireError.invalid(field, 'must be a list of version numbers');
  if (versions.length > LIMITS.pageLimitMax) throw QuireError.invalid(field, `must list at most ${LIMITS.pageLimitMax} versions`);
  return versions.map((v, i) => guardVersion(v, `${field}[${i}]`));
}

// ---- releases and pins -------------------------------------------------------------

export function guardRelease(release: Release): Release {
  if (typeof release !== 'object' || release === null) throw QuireError.invalid('release', 'is required');
  const out: Release = {
    topic: guardTopicName(release.topic),
    version: guardVersion(release.version),
    ...guardScopePair(release.scope, release.scopeKey),
    releasedAt: guardTime(release.releasedAt, 'releasedAt'),
    releasedBy: guardId(release.releasedBy, 'releasedBy'),
  };
  const runId = guardOptionalText(release.runId, 'runId', { max: STORE_LIMITS.idMax });
  if (runId !== undefined) out.runId = runId;
  if (release.withdrawnAt !== undefined && release.withdrawnAt !== null) {
    throw QuireError.invalid('withdrawnAt', 'must be absent (withdraw a release with withdrawRelease)');
  }
  return out;
}

/** A new (active) pin. */
export function guardPin(pin: Pin): Pin {
  if (typeof pin !== 'object' || pin === null) throw QuireError.invalid('pin', 'is required');
  if ((pin.unpinnedAt ?? undefined) !== undefined || (pin.unpinnedBy ?? undefined) !== undefined) {
    throw QuireError.invalid('unpinnedAt', 'must be absent on a new pin (end a pin with removePin)');
  }
  return {
    topic: guardTopicName(pin.topic),
    pinId: guardId(pin.pinId, 'pinId'),
    ...guardScopePair(pin.scope, pin.scopeKey),
    version: guardVersion(pin.version),
    reason: guardText(pin.reason ?? '', 'reason', { allowEmpty: true }),
    pinnedBy: guardId(pin.pinnedBy, 'pinnedBy'),
    pinnedAt: guardTime(pin.pinnedAt, 'pinnedAt'),
  };
}

// ---- rollout runs --------------------------------------------------------------------

export function guardRun(run: RolloutRun): RolloutRun {
  if (typeof run !== 'object' || run === null) throw QuireError.invalid('run', 'is required');
  const plan = validateRolloutPlan(run.plan, 'plan');
  if (!RUN_STATUSES.includes(run.status)) throw QuireError.invalid('status', `must be one of ${RUN_STATUSES.join(', ')}`);
  const stageIndex = guardInteger(run.stageIndex, 'stageIndex', -1);
  if (stageIndex >= plan.stages.length) throw QuireError.invalid('stageIndex', `must be below the plan's ${plan.stages.length} stages`);
  const out: RolloutRun = {
    topic: guardTopicName(run.topic),
    runId: guardId(run.runId, 'runId'),
    version: guardVersion(run.version),
    plan,
    status: run.status,
    stageIndex,
    stageReleasedAt: guardTime(run.stageReleasedAt, 'stageReleasedAt'),
    createdAt: guardTime(run.createdAt, 'createdAt'),
    updatedAt: guardTime(run.updatedAt, 'updatedAt'),
    startedBy: guardId(run.startedBy, 'startedBy'),
    revision: guardRevision(run.revision, 'revision'),
  };
  const pausedAt = guardOptionalTime(run.pausedAt, 'pausedAt');
  if (pausedAt !== undefined) out.pausedAt = pausedAt;
  const reason = guardOptionalText(run.reason, 'reason', { allowEmpty: true });
  if (reason !== undefined) out.reason = reason;
  if (run.epoch !== undefined) out.epoch = guardInteger(run.epoch, 'epoch', 0);
  return out;
}

/** A run for updateRun: `run.revision` must be `expectedRevision + 1`. */
export function guardRunUpdate(run: RolloutRun, expectedRevision: number): { run: RolloutRun; expectedRevision: number } {
  const expected = guardRevision(expectedRevision);
  const out = guardRun(run);
  if (out.revision !== expected + 1) {
    throw QuireError.invalid('revision', `must be expectedRevision + 1 (${expected + 1}), got ${out.revision}`);
  }
  return { run: out, expectedRevision: expected };
}

// ---- leases ------------------------------------------------------------------------------

export function guardLeaseRequest(name: unknown, owner: unknown, ttlMs: unknown): { name: string; owner: string; ttlMs: number } {
  return { name: guardId(name, 'name'), owner: guardId(owner, 'owner'), ttlMs: guardTtl(ttlMs) };
}

export function guardTtl(ttlMs: unknown, field = 'ttlMs'): number {
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > STORE_LIMITS.leaseTtlMaxMs) {
    throw QuireError.invalid(field, `must be an integer number of milliseconds between 1 and ${STORE_LIMITS.leaseTtlMaxMs}`);
  }
  return ttlMs;
}

export function guardLease(lease: Lease): Lease {
  if (typeof lease !== 'object' || lease === null) throw QuireError.invalid('lease', 'is required');
  return {
    name: guardId(lease.name, 'lease.name'),
    owner: guardId(lease.owner, 'lease.owner'),
    epoch: guardInteger(lease.epoch, 'lease.epoch', 1),
    expiresAt: guardTime(lease.expiresAt, 'lease.expiresAt'),
  };
}

// ---- audit and fleet reports ----------------------------------------------------------------

export function guardAuditEntry(entry: AuditEntry): AuditEntry {
  if (typeof entry !== 'object' || entry === null) throw QuireError.invalid('entry', 'is required');
  const details = entry.details ?? {};
  if (typeof details !== 'object' || Array.isArray(details)) throw QuireError.invalid('details', 'must be an object');
  let json: string;
  try {
    json = JSON.stringify(details);
  } catch (err) {
    throw new QuireError(Code.INVALID_ARGUMENT, 'details: must be JSON-serialisable', { field: 'details', cause: err });
  }
  if (Buffer.byteLength(json) > STORE_LIMITS.auditDetailsBytesMax) {
    throw QuireError.invalid('details', `must be at most ${STORE_LIMITS.auditDetailsBytesMax} bytes of JSON`);
  }
  const out: AuditEntry = {
    id: guardId(entry.id, 'id'),
    at: guardTime(entry.at, 'at'),
    actor: guardId(entry.actor, 'actor'),
    action: guardId(entry.action, 'action'),
    details: JSON.parse(json) as Record<string, unknown>,
  };
  if (entry.topic !== undefined && entry.topic !== null) out.topic = guardTopicName(entry.topic);
  const reason = guardOptionalText(entry.reason, 'reason', { allowEmpty: true });
  if (reason !== undefined) out.reason = reason;
  return out;
}

export function guardFleetReports(reports: readonly FleetReport[]): FleetReport[] {
  if (!Array.isArray(reports)) throw QuireError.invalid('reports', 'must be a list');
  if (reports.length > STORE_LIMITS.fleetReportsPerCallMax) {
    throw QuireError.invalid('reports', `must hold at most ${STORE_LIMITS.fleetReportsPerCallMax} reports per call`);
  }
  return reports.map((r, i) => {
    const f = `reports[${i}]`;
    if (typeof r !== 'object' || r === null) throw QuireError.invalid(f, 'must be an object');
    const out: FleetReport = {
      topic: guardTopicName(r.topic, `${f}.topic`),
      instance: guardId(r.instance, `${f}.instance`),
      identity: validateScope(r.identity, `${f}.identity`),
      version: guardInteger(r.version, `${f}.version`, 0),
      reportedAt: guardTime(r.reportedAt, `${f}.reportedAt`),
    };
    if (r.failedVersion !== undefined && r.failedVersion !== null) out.failedVersion = guardVersion(r.failedVersion, `${f}.failedVersion`);
    const error = guardOptionalText(r.error, `${f}.error`, { allowEmpty: true });
    if (error !== undefined) out.error = error;
    return out;
  });
}
