/**
 * The publish service's one service layer: topic admin, publish, register an existing
 * object, release, pins and rollback, deletion and retention, history and audit. REST and
 * gRPC handlers parse their input, call a method here and map the result; every business
 * rule lives here. Depends only on the
 * ports (`MetadataStore`, `BlobStore`, `Clock`) and the pure domain in `@quire/core`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Ajv, type ValidateFunction } from 'ajv';
import {
  Code,
  LIMITS,
  QuireError,
  checkPublishEncryption,
  checkTopicEncryptionSettings,
  dataKey,
  describeScope,
  isQuireError,
  protectedVersions,
  protectionOf,
  rollbackTarget,
  scopeKey,
  selectForDeletion,
  systemClock,
  validateBlobKey,
  validateInlineThreshold,
  validateMetadata,
  validatePageLimit,
  validatePublishId,
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
  BlobLocation,
  BlobStore,
  Clock,
  DataPointer,
  Metadata,
  MetadataStore,
  NewVersion,
  Page,
  Pin,
  Release,
  ResolutionState,
  RetentionPolicy,
  RolloutPlan,
  RolloutRun,
  Scope,
  Topic,
  VersionRecord,
} from '@quire/core';

export interface PublishServiceOptions {
  store: MetadataStore;
  blobs: BlobStore;
  clock?: Clock;
  /**
   * Largest payload held in memory by one call: a `Uint8Array` publish, or a JSON payload
   * read whole for JSON-Schema validation. Larger payloads must be streamed. Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /** Compare-and-set attempts of `updateTopic` before giving up with ABORTED. Default 5. */
  updateAttempts?: number;
  /** Starts the rollout of a version published with `useRolloutPlan` (which releases nothing itself). */
  onPublished?: (record: VersionRecord, actor: string) => Promise<RolloutRun>;
}

/** A topic with the number of its newest version (0 when none). */
export interface TopicView extends Topic {
  headVersion: number;
}

/** Settable topic fields; `null` clears an optional one. Unknown input is validated here. */
export interface TopicSettings {
  owner?: unknown;
  description?: unknown;
  retention?: unknown;
  inlineThresholdBytes?: unknown;
  rolloutPlan?: unknown;
  /** JSON Schema as an object or as JSON text. */
  jsonSchema?: unknown;
  allowedApplications?: unknown;
  /** `{algorithm: 'aes-256-gcm', keyId}`, or null / 'off' (see @quire/core encryption.ts). */
  encryption?: unknown;
}

export interface CreateTopicInput extends TopicSettings {
  name: unknown;
}

/** What publish and register have in common. */
export interface PublishCommon {
  topic: unknown;
  metadata?: unknown;
  contentType?: unknown;
  /** Scopes to release the new version to; none (or empty) = global. */
  scopes?: unknown;
  /** Release nothing now; start a run of the topic's rollout plan instead. */
  useRolloutPlan?: unknown;
  /** Idempotency key; one is made when absent. */
  publishId?: unknown;
  /** Expected SHA-256 (lowercase hex) / size, checked when given. */
  sha256?: unknown;
  size?: unknown;
  /** Who publishes (the caller's identity). */
  publisher: string;
}

export interface PublishInput extends PublishCommon {
  data: Uint8Array | Readable;
  /** Regions to upload to when the payload goes to S3; none = every configured region. */
  regions?: unknown;
}

export interface RegisterInput extends PublishCommon {
  /** The objects holding the payload (one per region, the same bytes). */
  locations?: unknown;
  /** Or: one key, present in these regions (default: every configured region). */
  key?: unknown;
  regions?: unknown;
}

export interface PublishResult {
  version: VersionRecord;
  releases: Release[];
  /** True when the publishId had already been committed and that version was returned. */
  replayed: boolean;
  /** The run started for a `useRolloutPlan` publish. */
  rollout?: RolloutRun;
}

export interface VersionData {
  record: VersionRecord;
  /** Inline bytes, or a stream from the first region holding the object. */
  body: Uint8Array | Readable;
}

export interface ListVersionsInput {
  limit?: unknown;
  cursor?: unknown;
  order?: unknown;
}

export interface ListAuditInput {
  topic?: unknown;
  /** Only entries by this actor / with this action (filtered here over the store's pages). */
  actor?: unknown;
  action?: unknown;
  since?: unknown;
  until?: unknown;
  limit?: unknown;
  cursor?: unknown;
}

export interface PinInput {
  topic: unknown;
  version: unknown;
  /** Pin only consumers matching this scope; absent / `{}` = the whole topic. */
  scope?: unknown;
  reason: unknown;
}

export interface UnpinInput {
  topic: unknown;
  scope?: unknown;
  reason?: unknown;
}

export interface RollbackInput {
  topic: unknown;
  scope?: unknown;
  reason: unknown;
}

export interface RollbackResult {
  pin: Pin;
  /** The version that was applied in the scope before the rollback. */
  from: number;
}

export interface RetentionResult {
  topic: string;
  /** Versions deleted by this run, ascending. */
  deleted: number[];
  /** Deleted versions whose S3 objects could not all be removed (left to the orphan sweep). */
  orphaned: number[];
}

export interface RetentionAllResult {
  results: RetentionResult[];
  /** Topics whose run failed (the others still ran). */
  failures: Array<{ topic: string; error: unknown }>;
}

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const CONTENT_TYPE_RE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:\s*;.*)?$/;
const ACTOR_MAX = 256;
const DESCRIPTION_MAX = 4096;
const JSON_SCHEMA_MAX = 256 * 1024;
const ALLOWED_APPS_MAX = 1000;
const REASON_MAX = 1024;
/** Actor of the deletions retention makes by itself. */
export const RETENTION_ACTOR = 'quire:retention';
/** Store pages one filtered audit query reads at most before answering (with a cursor). */
const AUDIT_SCAN_PAGES = 20;

export class PublishService {
  readonly #store: MetadataStore;
  readonly #blobs: BlobStore;
  readonly #clock: Clock;
  readonly #maxBuffered: number;
  readonly #updateAttempts: number;
  readonly #onPublished: PublishServiceOptions['onPublished'];
  readonly #ajv = new Ajv({ allErrors: false, strict: false });
  /** Compiled validators by topic name, keyed on the schema text. */
  readonly #validators = new Map<string, { schema: string; validate: ValidateFunction }>();

  constructor(options: PublishServiceOptions) {
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#clock = options.clock ?? systemClock;
    this.#maxBuffered = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.#updateAttempts = options.updateAttempts ?? 5;
    this.#onPublished = options.onPublished;
  }

  /** Regions the blob store writes to, in configuration order. */
  get regions(): readonly string[] {
    return this.#blobs.regions;
  }

  // ---- topics ---------------------------------------------------------------

  async createTopic(input: CreateTopicInput, actor: string): Promise<TopicView> {
    const who = validateActor(actor);
    const name = validateTopicName(input.name, 'name');
    const now = this.#clock.now();
    const topic: Topic = {
      name,
      owner: input.owner === undefined || input.owner === null ? who : validateText(input.owner, 'owner', 256, true),
      description: validateText(input.description ?? '', 'description', DESCRIPTION_MAX, false),
      retention: validateRetention(input.retention),
      inlineThresholdBytes: validateInlineThreshold(input.inlineThresholdBytes),
      createdAt: now,
      updatedAt: now,
      revision: 1,
    };
    if (input.rolloutPlan !== undefined && input.rolloutPlan !== null) topic.rolloutPlan = validateRolloutPlan(input.rolloutPlan);
    const schema = this.#validateJsonSchema(input.jsonSchema);
    if (schema !== undefined) topic.jsonSchema = schema;
    const apps = validateApplications(input.allowedApplications);
    if (apps !== undefined) topic.allowedApplications = apps;
    applyEncryptionSetting(topic, input.encryption);
    const created = await this.#store.createTopic(topic);
    await this.#audit(who, 'topic.create', name, { settings: settingsOf(created) });
    return { ...created, headVersion: 0 };
  }

  async getTopic(name: unknown): Promise<TopicView> {
    const topic = await this.#requireTopic(name, 'name');
    return { ...topic, headVersion: await this.#store.headVersion(topic.name) };
  }

  async listTopics(page: { limit?: unknown; cursor?: unknown; prefix?: unknown } = {}): Promise<Page<TopicView>> {
    const limit = validatePageLimit(page.limit);
    const cursor = optionalString(page.cursor, 'cursor');
    const prefix = optionalString(page.prefix, 'prefix');
    // The store pages by name without a prefix filter: the prefix narrows each page, so a
    // page may hold fewer than `limit` topics while `next` is still set.
    const res = await this.#store.listTopics(cursor === undefined ? { limit } : { limit, cursor });
    const topics = prefix === undefined ? res.items : res.items.filter((t) => t.name.startsWith(prefix));
    const items = await Promise.all(topics.map(async (t) => ({ ...t, headVersion: await this.#store.headVersion(t.name) })));
    return res.next === undefined ? { items } : { items, next: res.next };
  }

  /**
   * Change some settings of a topic. With `expectedRevision` the update applies only to
   * that revision (FAILED_PRECONDITION otherwise); without it, a concurrent update is
   * retried on the fresh topic a bounded number of times (ABORTED after that).
   */
  async updateTopic(name: unknown, patch: TopicSettings, actor: string, expectedRevision?: unknown): Promise<TopicView> {
    const who = validateActor(actor);
    const expected =
      expectedRevision === undefined || expectedRevision === null || expectedRevision === 0
        ? undefined
        : validatePositiveInt(expectedRevision, 'expectedRevision');
    for (let attempt = 1; ; attempt++) {
      const current = await this.#requireTopic(name, 'name');
      if (expected !== undefined && current.revision !== expected) {
        throw new QuireError(Code.FAILED_PRECONDITION, `expectedRevision: topic is at revision ${current.revision}, not ${expected}`, {
          field: 'expectedRevision',
        });
      }
      const { next, changed } = this.#applySettings(current, patch);
      if (changed.length === 0) return { ...current, headVersion: await this.#store.headVersion(current.name) };
      next.updatedAt = this.#clock.now();
      try {
        const updated = await this.#store.updateTopic(next, current.revision);
        this.#validators.delete(updated.name);
        await this.#audit(who, 'topic.update', updated.name, { changed, settings: settingsOf(updated), revision: updated.revision });
        return { ...updated, headVersion: await this.#store.headVersion(updated.name) };
      } catch (err) {
        if (!isQuireError(err, Code.ABORTED)) throw err;
        if (expected !== undefined) {
          throw new QuireError(Code.FAILED_PRECONDITION, 'expectedRevision: topic changed concurrently', { field: 'expectedRevision', cause: err });
        }
        if (attempt >= this.#updateAttempts) {
          throw new QuireError(Code.ABORTED, `topic ${current.name} kept changing; gave up after ${attempt} attempts`, { cause: err });
        }
      }
    }
  }

  #applySettings(current: Topic, patch: TopicSettings): { next: Topic; changed: string[] } {
    const next: Topic = { ...current };
    const changed: string[] = [];
    if (patch.owner !== undefined) {
      next.owner = validateText(patch.owner, 'owner', 256, true);
      if (next.owner !== current.owner) changed.push('owner');
    }
    if (patch.description !== undefined) {
      next.description = validateText(patch.description ?? '', 'description', DESCRIPTION_MAX, false);
      if (next.description !== current.description) changed.push('description');
    }
    if (patch.retention !== undefined) {
      next.retention = validateRetention(patch.retention);
      if (!sameJson(next.retention, current.retention)) changed.push('retention');
    }
    if (patch.inlineThresholdBytes !== undefined) {
      next.inlineThresholdBytes = validateInlineThreshold(patch.inlineThresholdBytes);
      if (next.inlineThresholdBytes !== current.inlineThresholdBytes) changed.push('inlineThresholdBytes');
    }
    if (patch.rolloutPlan !== undefined) {
      if (patch.rolloutPlan === null) delete next.rolloutPlan;
      else next.rolloutPlan = validateRolloutPlan(patch.rolloutPlan);
      if (!sameJson(next.rolloutPlan, current.rolloutPlan)) changed.push('rolloutPlan');
    }
    if (patch.jsonSchema !== undefined) {
      const schema = this.#validateJsonSchema(patch.jsonSchema);
      if (schema === undefined) delete next.jsonSchema;
      else next.jsonSchema = schema;
      if (next.jsonSchema !== current.jsonSchema) changed.push('jsonSchema');
    }
    if (patch.allowedApplications !== undefined) {
      const apps = validateApplications(patch.allowedApplications);
      if (apps === undefined) delete next.allowedApplications;
      else next.allowedApplications = apps;
      if (!sameJson(next.allowedApplications, current.allowedApplications)) changed.push('allowedApplications');
    }
    if (applyEncryptionSetting(next, patch.encryption) && !sameJson(next.encryption, current.encryption)) changed.push('encryption');
    return { next, changed };
  }

  // ---- publish ----------------------------------------------------------------

  /**
   * Publish a new version. Everything is validated first; then the bytes are stored
   * (inline up to the topic's threshold, else streamed to the blob store under
   * `topics/<topic>/<publishId>`), checked against the expected size / SHA-256, and only
   * then the version is committed and released. A failure before the commit leaves no
   * version and deletes the uploaded object.
   */
  async publish(input: PublishInput): Promise<PublishResult> {
    const common = await this.#validateCommon(input);
    const { topic } = common;
    const regions = this.#validateRegions(input.regions, 'regions');
    if (input.data instanceof Uint8Array && input.data.byteLength > this.#maxBuffered) {
      throw new QuireError(Code.RESOURCE_EXHAUSTED, `data: ${input.data.byteLength} bytes is more than ${this.#maxBuffered} bytes in one call; stream it`, {
        field: 'data',
      });
    }

    // JSON payloads of a topic with a schema are validated before anything is stored.
    let data = input.data;
    const validate = isJsonType(common.contentType) ? this.#validatorOf(topic) : undefined;
    if (validate !== undefined) {
      const bytes = data instanceof Uint8Array ? data : await readAll(data, this.#maxBuffered, 'data');
      checkJson(validate, bytes);
      data = bytes;
    }

    const threshold = topic.inlineThresholdBytes;
    let head: Uint8Array | undefined;
    let rest: Readable | undefined;
    if (data instanceof Uint8Array) {
      if (data.byteLength <= threshold) head = data;
      else rest = Readable.from([data], { objectMode: false });
    } else if (common.size !== undefined && common.size > threshold) {
      rest = data;
    } else {
      const split = await readUpTo(data, threshold);
      if (split.rest === undefined) head = split.head;
      else rest = split.rest;
    }

    if (head !== undefined) {
      const sha256 = sha256Hex(head);
      checkExpected(common, head.byteLength, sha256);
      const pointer: DataPointer = { kind: 'inline', blobId: randomUUID() };
      return this.#commit(common, { size: head.byteLength, sha256, pointer }, head, undefined);
    }

    // A publishId the caller chose may be retried: a suffix keeps the retry's upload from
    // overwriting the object of the version it already committed.
    const key = dataKey(topic.name, common.publishId, common.generatedId ? undefined : randomUUID().slice(0, 8));
    const put = await this.#blobs.put(key, rest as Readable, {
      contentType: common.contentType,
      ...(regions === undefined ? {} : { regions }),
      ...(common.size === undefined ? {} : { size: common.size }),
      metadata: { 'quire-topic': topic.name, 'quire-publish-id': common.publishId },
    });
    const cleanup = () => this.#deleteQuietly(key, put.locations.map((l) => l.region));
    try {
      checkExpected(common, put.size, put.sha256);
    } catch (err) {
      await cleanup();
      throw err;
    }
    return this.#commit(common, { size: put.size, sha256: put.sha256, pointer: { kind: 's3', locations: put.locations } }, undefined, cleanup);
  }

  /**
   * Where the SDK should upload a large payload itself (straight to S3 in every chosen
   * region) before committing it with `registerExisting`: a fresh publishId and its key.
   * Nothing is written here; an upload that is never committed is an orphan the sweep removes.
   */
  async prepareUpload(input: { topic: unknown; regions?: unknown; publishId?: unknown }): Promise<{ publishId: string; key: string; locations: BlobLocation[] }> {
    const topic = await this.#requireTopic(input.topic);
    const regions = this.#validateRegions(input.regions, 'regions') ?? [...this.#blobs.regions];
    const publishId = validatePublishId(input.publishId) ?? randomUUID();
    const key = dataKey(topic.name, publishId, randomUUID().slice(0, 8));
    return { publishId, key, locations: regions.map((region) => ({ region, bucket: this.#blobs.bucketOf(region), key })) };
  }

  /**
   * Commit a version whose bytes are already in the blob store (uploaded by the SDK, or an
   * object that was there before): checks each object exists, reads it once for its size
   * and SHA-256, then commits. The objects are never deleted on failure (they are not ours yet).
   */
  async registerExisting(input: RegisterInput): Promise<PublishResult> {
    const common = await this.#validateCommon(input);
    const locations = this.#validateLocations(input);
    const heads = await Promise.all(locations.map((l) => this.#blobs.head(l.key, l.region)));
    let size: number | undefined;
    heads.forEach((h, i) => {
      const field = input.locations === undefined || input.locations === null ? 'key' : `locations[${i}]`;
      const loc = locations[i] as BlobLocation;
      if (h === undefined) throw QuireError.notFound(`object ${loc.key} in region ${loc.region}`, field);
      if (size !== undefined && h.size !== size) {
        throw QuireError.invalid(field, `object is ${h.size} bytes in region ${loc.region} but ${size} bytes in region ${locations[0]?.region}`);
      }
      size = h.size;
    });
    const first = locations[0] as BlobLocation;
    const got = await this.#blobs.get(first.key, { regions: [first.region] });
    const validate = isJsonType(common.contentType) ? this.#validatorOf(common.topic) : undefined;
    const hash = createHash('sha256');
    let read = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of got.body) {
      const buf = toBuffer(chunk);
      hash.update(buf);
      read += buf.byteLength;
      if (validate !== undefined) {
        if (read > this.#maxBuffered) {
          got.body.destroy();
          throw new QuireError(Code.RESOURCE_EXHAUSTED, `data: JSON payloads over ${this.#maxBuffered} bytes cannot be validated against the topic's schema`, {
            field: 'data',
          });
        }
        chunks.push(buf);
      }
    }
    const sha256 = hash.digest('hex');
    checkExpected(common, read, sha256);
    if (validate !== undefined) checkJson(validate, Buffer.concat(chunks));
    return this.#commit(common, { size: read, sha256, pointer: { kind: 's3', locations } }, undefined, undefined, 'version.register');
  }

  async #commit(
    common: ValidCommon,
    data: { size: number; sha256: string; pointer: DataPointer },
    inline: Uint8Array | undefined,
    cleanup: (() => Promise<void>) | undefined,
    action = 'publish',
  ): Promise<PublishResult> {
    const v: NewVersion = {
      topic: common.topic.name,
      publishId: common.publishId,
      createdAt: this.#clock.now(),
      publisher: common.publisher,
      metadata: common.metadata,
      contentType: common.contentType,
      size: data.size,
      sha256: data.sha256,
      pointer: data.pointer,
    };
    let record: VersionRecord;
    try {
      record = await this.#store.commitVersion(v, inline);
    } catch (err) {
      if (cleanup) await cleanup();
      throw err;
    }
    const replayed = !samePointer(record.pointer, v.pointer);
    if (replayed) {
      // The publishId was committed before: that version stands; our copy is not needed.
      if (cleanup) await cleanup();
      if (record.sha256 !== v.sha256 || record.size !== v.size) {
        throw new QuireError(Code.ALREADY_EXISTS, `publishId: ${common.publishId} was already used for other data (version ${record.version})`, {
          field: 'publishId',
        });
      }
    }
    // A replay (a retried publish) creates only what the first attempt did not get to: it
    // never re-activates a scope that was withdrawn since, nor starts a second run.
    const releases = common.useRolloutPlan ? [] : await this.#putReleases(record, common.scopes, common.publisher, replayed);
    if (!replayed) {
      await this.#audit(common.publisher, action, record.topic, {
        version: record.version,
        publishId: record.publishId,
        size: record.size,
        sha256: record.sha256,
        storage: record.pointer.kind,
        scopes: common.scopes,
      });
    }
    if (common.useRolloutPlan && this.#onPublished !== undefined) {
      const existing = replayed ? (await this.#store.listRuns(record.topic)).find((r) => r.version === record.version) : undefined;
      return { version: record, releases, replayed, rollout: existing ?? (await this.#onPublished(record, common.publisher)) };
    }
    return { version: record, releases, replayed };
  }

  // ---- releases and history ------------------------------------------------

  /** Release a version to more scopes (none = global). */
  async release(topicName: unknown, version: unknown, scopes: unknown, actor: string, reason?: unknown): Promise<Release[]> {
    const who = validateActor(actor);
    const topic = await this.#requireTopic(topicName);
    const record = await this.#requireVersion(topic.name, version);
    if (record.deletedAt !== undefined) {
      throw new QuireError(Code.FAILED_PRECONDITION, `version: ${record.version} of ${topic.name} was deleted`, { field: 'version' });
    }
    const list = validateScopes(scopes);
    const why = optionalReason(reason);
    const releases = await this.#putReleases(record, list, who);
    await this.#audit(who, 'release', topic.name, { version: record.version, scopes: list }, why);
    return releases;
  }

  async getVersion(topicName: unknown, version: unknown): Promise<{ version: VersionRecord; releases: Release[] }> {
    const topic = await this.#requireTopic(topicName);
    const record = await this.#requireVersion(topic.name, version);
    const releases = (await this.#store.listReleases(topic.name)).filter((r) => r.version === record.version);
    return { version: record, releases };
  }

  async listVersions(topicName: unknown, req: ListVersionsInput = {}): Promise<Page<VersionRecord>> {
    const topic = await this.#requireTopic(topicName);
    const limit = validatePageLimit(req.limit);
    const cursor = optionalString(req.cursor, 'cursor');
    const order = req.order === undefined || req.order === null || req.order === '' ? 'desc' : req.order;
    if (order !== 'asc' && order !== 'desc') throw QuireError.invalid('order', 'must be "asc" or "desc"');
    return this.#store.listVersions(topic.name, cursor === undefined ? { limit, order } : { limit, order, cursor });
  }

  /**
   * A topic's releases (or one version's: its scopes). Active ones only unless
   * `includeWithdrawn`; NOT_FOUND for a version that does not exist.
   */
  async listReleases(topicName: unknown, version?: unknown, options: { includeWithdrawn?: unknown } = {}): Promise<Release[]> {
    const topic = await this.#requireTopic(topicName);
    const withdrawn = optionalBoolean(options.includeWithdrawn, 'includeWithdrawn') ?? false;
    let all = await this.#store.listReleases(topic.name);
    if (!withdrawn) all = all.filter((r) => r.withdrawnAt === undefined);
    if (version === undefined || version === null || version === 0) return all;
    const record = await this.#requireVersion(topic.name, version);
    return all.filter((r) => r.version === record.version);
  }

  // ---- pins and rollback -----------------------------------------------------

  /**
   * Pin the topic (or the consumers matching `scope`) to an existing, live version: they
   * get it whatever is published later, until unpinned. A pin on the same scope is replaced.
   */
  async pin(input: PinInput, actor: string): Promise<Pin> {
    const who = validateActor(actor);
    const topic = await this.#requireTopic(input.topic);
    const scope = validateScope(input.scope, 'scope');
    const reason = requireReason(input.reason);
    const record = await this.#requireVersion(topic.name, input.version);
    if (record.deletedAt !== undefined) {
      throw new QuireError(Code.FAILED_PRECONDITION, `version: ${record.version} of ${topic.name} was deleted; it cannot be pinned`, { field: 'version' });
    }
    const pin = await this.#putPin(topic.name, record.version, scope, reason, who);
    await this.#audit(who, 'pin', topic.name, { version: record.version, scope, pinId: pin.pinId }, reason);
    return pin;
  }

  /** End the pin on exactly this scope (absent = the global pin). NOT_FOUND when there is none. */
  async unpin(input: UnpinInput, actor: string): Promise<Pin> {
    const who = validateActor(actor);
    const topic = await this.#requireTopic(input.topic);
    const scope = validateScope(input.scope, 'scope');
    const reason = optionalReason(input.reason);
    const key = scopeKey(scope);
    const active = (await this.#store.listPins(topic.name)).find((p) => p.unpinnedAt === undefined && p.scopeKey === key);
    if (active === undefined) throw QuireError.notFound(`an active pin of ${topic.name} on scope ${describeScope(scope)}`, 'scope');
    const ended = await this.#store.removePin(topic.name, key, this.#clock.now(), who);
    if (ended === undefined) throw QuireError.notFound(`an active pin of ${topic.name} on scope ${describeScope(scope)}`, 'scope');
    await this.#audit(who, 'unpin', topic.name, { version: ended.version, scope, pinId: ended.pinId }, reason);
    return ended;
  }

  /** The topic's active pins, or with `history` every pin it ever had (ended ones too). */
  async listPins(topicName: unknown, options: { history?: unknown } = {}): Promise<Pin[]> {
    const topic = await this.#requireTopic(topicName);
    const history = optionalBoolean(options.history, 'history') ?? false;
    const pins = await this.#store.listPins(topic.name);
    return history ? pins : pins.filter((p) => p.unpinnedAt === undefined);
  }

  /**
   * Roll the scope back: pin the last version fully rolled out before the one it runs now,
   * as `rollbackTarget` in `@quire/core` decides. FAILED_PRECONDITION when there is none.
   */
  async rollback(input: RollbackInput, actor: string): Promise<RollbackResult> {
    const who = validateActor(actor);
    const topic = await this.#requireTopic(input.topic);
    const scope = validateScope(input.scope, 'scope');
    const reason = requireReason(input.reason);
    const [state, runs] = await Promise.all([this.#resolutionState(topic.name), this.#store.listRuns(topic.name)]);
    const res = rollbackTarget(state, scope, runs);
    if (!res.ok) {
      const r = res.refusal;
      const where = describeScope(scope);
      const message =
        r.reason === 'no-current'
          ? `scope: no version of ${topic.name} applies to ${where}; nothing to roll back`
          : `scope: no version of ${topic.name} before ${r.current} was fully rolled out to ${r.required.map(describeScope).join('; ')}; nothing to roll back to`;
      throw new QuireError(Code.FAILED_PRECONDITION, message, { field: 'scope' });
    }
    const { current, target } = res.decision;
    const pin = await this.#putPin(topic.name, target, scope, reason, who);
    await this.#audit(who, 'rollback', topic.name, { from: current, version: target, scope, pinId: pin.pinId }, reason);
    return { pin, from: current };
  }

  async #putPin(topic: string, version: number, scope: Scope, reason: string, by: string): Promise<Pin> {
    const pin: Pin = { topic, pinId: randomUUID(), scope, scopeKey: scopeKey(scope), version, reason, pinnedBy: by, pinnedAt: this.#clock.now() };
    await this.#store.putPin(pin);
    return pin;
  }

  // ---- deletion and retention ------------------------------------------------

  /**
   * Delete a version on an operator's request: refused (FAILED_PRECONDITION) while it is
   * pinned, latest for some scope or inside an active rollout run. See `#deleteVersions`
   * for the order of the steps.
   */
  async deleteVersion(topicName: unknown, version: unknown, reason: unknown, actor: string): Promise<VersionRecord> {
    const who = validateActor(actor);
    const topic = await this.#requireTopic(topicName);
    const why = requireReason(reason);
    const record = await this.#requireVersion(topic.name, version);
    if (record.deletedAt !== undefined) {
      throw new QuireError(Code.FAILED_PRECONDITION, `version: ${record.version} of ${topic.name} is already deleted`, { field: 'version' });
    }
    const [state, runs] = await Promise.all([this.#resolutionState(topic.name), this.#store.listRuns(topic.name)]);
    const protection = protectionOf(record.version, state, runs);
    if (protection !== undefined) {
      throw new QuireError(Code.FAILED_PRECONDITION, `version: ${record.version} of ${topic.name} ${protection}; it cannot be deleted`, { field: 'version' });
    }
    await this.#deleteVersions(topic.name, [record], who, why, { by: 'operator' });
    return { ...record, deletedAt: (await this.#store.getVersion(topic.name, record.version))?.deletedAt ?? this.#clock.now() };
  }

  /**
   * Apply the topic's retention policy now (`now` defaults to the clock): delete the
   * versions `selectForDeletion` picks, never a protected one (pinned, latest for some
   * scope, inside an active run). Returns the versions deleted.
   */
  async runRetention(topicName: unknown, now?: number, actor = RETENTION_ACTOR): Promise<RetentionResult> {
    const who = validateActor(actor);
    const topic = await this.#requireTopic(topicName);
    const at = now ?? this.#clock.now();
    const policy = topic.retention;
    if (policy.keepLast === undefined && policy.maxAgeMs === undefined) return { topic: topic.name, deleted: [], orphaned: [] };
    const [versions, runs] = await Promise.all([this.#allVersions(topic.name), this.#store.listRuns(topic.name)]);
    const state = await this.#resolutionState(topic.name, versions);
    const doomed = selectForDeletion(versions, policy, protectedVersions(state, runs), at);
    if (doomed.length === 0) return { topic: topic.name, deleted: [], orphaned: [] };
    const byNumber = new Map(versions.map((v) => [v.version, v]));
    const records = doomed.map((v) => byNumber.get(v) as VersionRecord);
    const orphaned = await this.#deleteVersions(topic.name, records, who, `retention ${describeRetention(policy)}`, { by: 'retention', policy });
    return { topic: topic.name, deleted: doomed, orphaned };
  }

  /**
   * Retention over every topic with a policy (the leader's scheduler calls this
   * periodically). A topic that fails is reported and the others still run.
   */
  async runRetentionAll(now?: number): Promise<RetentionAllResult> {
    const out: RetentionAllResult = { results: [], failures: [] };
    let cursor: string | undefined;
    do {
      const page = await this.#store.listTopics(cursor === undefined ? { limit: 500 } : { limit: 500, cursor });
      for (const t of page.items) {
        if (t.retention.keepLast === undefined && t.retention.maxAgeMs === undefined) continue;
        try {
          const res = await this.runRetention(t.name, now);
          if (res.deleted.length > 0) out.results.push(res);
        } catch (error) {
          out.failures.push({ topic: t.name, error });
        }
      }
      cursor = page.next;
    } while (cursor !== undefined);
    return out;
  }

  /**
   * Delete versions: mark each deleted in the metadata store first (consumers stop being
   * handed it and its inline bytes go), then delete its S3 objects in every region. A
   * crash or an S3 failure in between leaves a deleted version with objects behind (an
   * orphan the sweep removes), never a visible version without data. Each deletion is
   * audited. Returns the versions whose objects could not all be deleted.
   */
  async #deleteVersions(topic: string, records: readonly VersionRecord[], actor: string, reason: string, details: Record<string, unknown>): Promise<number[]> {
    const orphaned: number[] = [];
    for (const record of records) {
      await this.#store.markVersionDeleted(topic, record.version, this.#clock.now());
      let objectsDeleted = true;
      if (record.pointer.kind === 's3') {
        for (const loc of record.pointer.locations) {
          try {
            await this.#blobs.delete(loc.key, [loc.region]);
          } catch {
            objectsDeleted = false;
          }
        }
      }
      if (!objectsDeleted) orphaned.push(record.version);
      await this.#audit(actor, 'version.delete', topic, { ...details, version: record.version, storage: record.pointer.kind, objectsDeleted }, reason);
    }
    return orphaned;
  }

  async #allVersions(topic: string): Promise<VersionRecord[]> {
    const out: VersionRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#store.listVersions(topic, cursor === undefined ? { limit: 1000, order: 'asc' } : { limit: 1000, order: 'asc', cursor });
      out.push(...page.items);
      cursor = page.next;
    } while (cursor !== undefined);
    return out;
  }

  /** Releases, pins and deleted versions of a topic, as the core's resolution functions take them. */
  async #resolutionState(topic: string, known?: readonly VersionRecord[]): Promise<ResolutionState> {
    const [releases, pins, versions] = await Promise.all([
      this.#store.listReleases(topic),
      this.#store.listPins(topic),
      known === undefined ? this.#allVersions(topic) : Promise.resolve(known),
    ]);
    const deleted = new Map<number, number>();
    for (const v of versions) if (v.deletedAt !== undefined) deleted.set(v.version, v.deletedAt);
    return { releases, pins, deleted };
  }

  /** A version's bytes: inline from the metadata store, or streamed from the blob store. */
  async openData(topicName: unknown, version: unknown): Promise<VersionData> {
    const topic = await this.#requireTopic(topicName);
    const record = await this.#requireVersion(topic.name, version);
    if (record.deletedAt !== undefined) {
      throw new QuireError(Code.NOT_FOUND, `version: ${record.version} of ${topic.name} was deleted; its data is gone`, { field: 'version' });
    }
    if (record.pointer.kind === 'inline') {
      const bytes = await this.#store.getInlineData(topic.name, record.pointer.blobId);
      if (bytes === undefined) throw new QuireError(Code.DATA_LOSS, `inline data of ${topic.name} version ${record.version} is missing`);
      return { record, body: bytes };
    }
    const loc = record.pointer.locations[0];
    if (loc === undefined) throw new QuireError(Code.DATA_LOSS, `${topic.name} version ${record.version} has no data location`);
    const got = await this.#blobs.get(loc.key, { regions: record.pointer.locations.map((l) => l.region) });
    return { record, body: got.body };
  }

  /**
   * The audit log, newest first, filtered by topic and time in the store and by actor /
   * action here: with those filters the cursor is this service's own (store cursor + how
   * many entries of that page were consumed), and a page may hold fewer than `limit`
   * entries while `next` is still set (at most AUDIT_SCAN_PAGES store pages are read per call).
   */
  async listAudit(query: ListAuditInput = {}): Promise<Page<AuditEntry>> {
    const limit = validatePageLimit(query.limit);
    const q: Parameters<MetadataStore['listAudit']>[0] = { limit };
    if (query.topic !== undefined && query.topic !== null && query.topic !== '') q.topic = validateTopicName(query.topic);
    const cursor = optionalString(query.cursor, 'cursor');
    if (query.since !== undefined && query.since !== null && query.since !== 0) q.since = validateNonNegativeInt(query.since, 'since');
    if (query.until !== undefined && query.until !== null && query.until !== 0) q.until = validateNonNegativeInt(query.until, 'until');
    const actor = optionalString(query.actor, 'actor');
    const action = optionalString(query.action, 'action');
    if (actor === undefined && action === undefined) {
      if (cursor !== undefined) q.cursor = cursor;
      return this.#store.listAudit(q);
    }
    const matches = (e: AuditEntry) => (actor === undefined || e.actor === actor) && (action === undefined || e.action === action);
    let pos = cursor === undefined ? { skip: 0 } : decodeAuditCursor(cursor);
    const items: AuditEntry[] = [];
    for (let pages = 0; pages < AUDIT_SCAN_PAGES; pages++) {
      const page = await this.#store.listAudit(pos.store === undefined ? q : { ...q, cursor: pos.store });
      for (let i = pos.skip; i < page.items.length; i++) {
        const e = page.items[i] as AuditEntry;
        if (!matches(e)) continue;
        items.push(e);
        if (items.length === limit) {
          const rest = i + 1 < page.items.length ? encodeAuditCursor({ ...pos, skip: i + 1 }) : page.next === undefined ? undefined : encodeAuditCursor({ store: page.next, skip: 0 });
          return rest === undefined ? { items } : { items, next: rest };
        }
      }
      if (page.next === undefined) return { items };
      pos = { store: page.next, skip: 0 };
    }
    return { items, next: encodeAuditCursor(pos) };
  }

  // ---- helpers ------------------------------------------------------------------

  async #requireTopic(name: unknown, field = 'topic'): Promise<Topic> {
    const n = validateTopicName(name, field);
    const topic = await this.#store.getTopic(n);
    if (topic === undefined) throw QuireError.notFound(`topic ${n}`, field);
    return topic;
  }

  async #requireVersion(topic: string, version: unknown): Promise<VersionRecord> {
    const v = validateVersionNumber(version);
    const record = await this.#store.getVersion(topic, v);
    if (record === undefined) throw QuireError.notFound(`version ${v} of topic ${topic}`, 'version');
    return record;
  }

  async #validateCommon(input: PublishCommon): Promise<ValidCommon> {
    const publisher = validateActor(input.publisher);
    const topic = await this.#requireTopic(input.topic);
    const metadata = validateMetadata(input.metadata);
    checkPublishEncryption(topic, metadata);
    const contentType =
      input.contentType === undefined || input.contentType === null || input.contentType === ''
        ? DEFAULT_CONTENT_TYPE
        : validateContentType(input.contentType);
    const scopes = validateScopes(input.scopes);
    const chosenId = validatePublishId(input.publishId);
    const generatedId = chosenId === undefined;
    const publishId = chosenId ?? randomUUID();
    const useRolloutPlan = validateUseRolloutPlan(input.useRolloutPlan, topic, scopes, this.#onPublished !== undefined);
    const out: ValidCommon = { topic, metadata, contentType, scopes, publishId, generatedId, publisher, useRolloutPlan };
    if (input.sha256 !== undefined && input.sha256 !== null && input.sha256 !== '') out.sha256 = validateSha256(input.sha256);
    if (input.size !== undefined && input.size !== null) out.size = validateNonNegativeInt(input.size, 'size');
    return out;
  }

  #validateRegions(regions: unknown, field: string): string[] | undefined {
    if (regions === undefined || regions === null) return undefined;
    if (!Array.isArray(regions)) throw QuireError.invalid(field, 'must be a list of region names');
    if (regions.length === 0) return undefined;
    const out: string[] = [];
    regions.forEach((r: unknown, i: number) => {
      const region = this.#validateRegion(r, `${field}[${i}]`);
      if (!out.includes(region)) out.push(region);
    });
    return out;
  }

  #validateRegion(region: unknown, field: string): string {
    if (typeof region !== 'string' || !this.#blobs.regions.includes(region)) {
      throw QuireError.invalid(field, `unknown region ${JSON.stringify(region)}; configured: ${this.#blobs.regions.join(', ')}`);
    }
    return region;
  }

  #validateLocations(input: RegisterInput): BlobLocation[] {
    if (input.locations !== undefined && input.locations !== null) {
      if (input.key !== undefined && input.key !== null && input.key !== '') throw QuireError.invalid('key', 'give either locations or key, not both');
      if (!Array.isArray(input.locations) || input.locations.length === 0) throw QuireError.invalid('locations', 'must list at least one object');
      const seen = new Set<string>();
      return input.locations.map((raw: unknown, i: number) => {
        const f = `locations[${i}]`;
        if (typeof raw !== 'object' || raw === null) throw QuireError.invalid(f, 'must be an object {region, bucket, key}');
        const l = raw as Record<string, unknown>;
        const region = this.#validateRegion(l.region, `${f}.region`);
        if (seen.has(region)) throw QuireError.invalid(`${f}.region`, `region ${region} is listed twice`);
        seen.add(region);
        const bucket = this.#blobs.bucketOf(region);
        if (l.bucket !== undefined && l.bucket !== null && l.bucket !== '' && l.bucket !== bucket) {
          throw QuireError.invalid(`${f}.bucket`, `region ${region} uses bucket ${bucket}, not ${String(l.bucket)}`);
        }
        const key = validateBlobKey(l.key, `${f}.key`);
        // One key in every region: readers (the consume service, retention, the SDK) take
        // any location's key for all of them.
        const first = (input.locations as Array<Record<string, unknown>>)[0]?.key;
        if (i > 0 && key !== first) throw QuireError.invalid(`${f}.key`, `every region must hold the payload under the same key (${String(first)})`);
        return { region, bucket, key };
      });
    }
    const key = validateBlobKey(input.key, 'key');
    const regions = this.#validateRegions(input.regions, 'regions') ?? [...this.#blobs.regions];
    return regions.map((region) => ({ region, bucket: this.#blobs.bucketOf(region), key }));
  }

  #validateJsonSchema(schema: unknown): string | undefined {
    if (schema === undefined || schema === null || schema === '') return undefined;
    let text: string;
    let parsed: unknown;
    if (typeof schema === 'string') {
      text = schema;
      try {
        parsed = JSON.parse(schema);
      } catch {
        throw QuireError.invalid('jsonSchema', 'is not valid JSON');
      }
    } else if (typeof schema === 'object' && !Array.isArray(schema)) {
      parsed = schema;
      text = JSON.stringify(schema);
    } else {
      throw QuireError.invalid('jsonSchema', 'must be a JSON Schema object (or its JSON text)');
    }
    if (text.length > JSON_SCHEMA_MAX) throw QuireError.invalid('jsonSchema', `must be at most ${JSON_SCHEMA_MAX} characters`);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw QuireError.invalid('jsonSchema', 'must be a JSON object');
    try {
      this.#ajv.compile(parsed as object);
    } catch (err) {
      throw new QuireError(Code.INVALID_ARGUMENT, `jsonSchema: not a usable JSON Schema: ${(err as Error).message}`, { field: 'jsonSchema', cause: err });
    }
    return text;
  }

  #validatorOf(topic: Topic): ValidateFunction | undefined {
    if (topic.jsonSchema === undefined || topic.jsonSchema === '') return undefined;
    const cached = this.#validators.get(topic.name);
    if (cached !== undefined && cached.schema === topic.jsonSchema) return cached.validate;
    const validate = this.#ajv.compile(JSON.parse(topic.jsonSchema) as object);
    this.#validators.set(topic.name, { schema: topic.jsonSchema, validate });
    return validate;
  }

  async #putReleases(record: VersionRecord, scopes: Scope[], by: string, onlyMissing = false): Promise<Release[]> {
    const now = this.#clock.now();
    const list = scopes.length === 0 ? [{}] : scopes;
    const existing = onlyMissing
      ? new Map((await this.#store.listReleases(record.topic)).filter((r) => r.version === record.version).map((r) => [r.scopeKey, r]))
      : new Map<string, Release>();
    const releases: Release[] = [];
    for (const scope of list) {
      const had = existing.get(scopeKey(scope));
      if (had !== undefined) {
        releases.push(had);
        continue;
      }
      const release: Release = { topic: record.topic, version: record.version, scope, scopeKey: scopeKey(scope), releasedAt: now, releasedBy: by };
      await this.#store.putRelease(release);
      releases.push(release);
    }
    return releases;
  }

  async #audit(actor: string, action: string, topic: string | undefined, details: Record<string, unknown>, reason?: string): Promise<void> {
    const entry: AuditEntry = { id: randomUUID(), at: this.#clock.now(), actor, action, details };
    if (topic !== undefined) entry.topic = topic;
    if (reason !== undefined) entry.reason = reason;
    await this.#store.appendAudit(entry);
  }

  async #deleteQuietly(key: string, regions: readonly string[]): Promise<void> {
    try {
      await this.#blobs.delete(key, regions);
    } catch {
      // Best effort: an object left behind is an orphan that the sweep removes.
    }
  }
}

interface ValidCommon {
  topic: Topic;
  metadata: Metadata;
  contentType: string;
  scopes: Scope[];
  publishId: string;
  /** True when the service made the publishId (so no retry can reuse it). */
  generatedId: boolean;
  publisher: string;
  useRolloutPlan: boolean;
  sha256?: string;
  size?: number;
}

function validateActor(actor: unknown): string {
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > ACTOR_MAX) {
    throw QuireError.invalid('actor', `must be a non-empty string of at most ${ACTOR_MAX} characters`);
  }
  return actor;
}

function requireReason(value: unknown): string {
  const reason = optionalReason(value);
  if (reason === undefined) throw QuireError.invalid('reason', 'is required: say why (it goes to the audit log)');
  return reason;
}

function optionalReason(value: unknown): string | undefined {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) return undefined;
  return validateText(value, 'reason', REASON_MAX, true);
}

function optionalBoolean(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw QuireError.invalid(field, 'must be true or false');
}

function describeRetention(p: RetentionPolicy): string {
  const parts: string[] = [];
  if (p.keepLast !== undefined) parts.push(`keepLast=${p.keepLast}`);
  if (p.maxAgeMs !== undefined) parts.push(`maxAgeMs=${p.maxAgeMs}`);
  return parts.join(', ');
}

interface AuditCursor {
  /** Store cursor of the page being read (undefined = the first page). */
  store?: string;
  /** Entries of that page already consumed. */
  skip: number;
}

function encodeAuditCursor(c: AuditCursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeAuditCursor(cursor: string): AuditCursor {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (typeof c === 'object' && c !== null) {
      const { store, skip } = c as Record<string, unknown>;
      if ((store === undefined || typeof store === 'string') && typeof skip === 'number' && Number.isSafeInteger(skip) && skip >= 0) {
        return store === undefined ? { skip } : { store, skip };
      }
    }
  } catch {
    // reported below
  }
  throw QuireError.invalid('cursor', 'is not a cursor of an audit query filtered by actor or action');
}

function validateText(value: unknown, field: string, max: number, required: boolean): string {
  if (typeof value !== 'string') throw QuireError.invalid(field, 'must be a string');
  if (required && value.trim().length === 0) throw QuireError.invalid(field, 'must not be empty');
  if (value.length > max) throw QuireError.invalid(field, `must be at most ${max} characters`);
  return value;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw QuireError.invalid(field, 'must be a string');
  return value;
}

function validatePositiveInt(value: unknown, field: string): number {
  const n = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw QuireError.invalid(field, 'must be a positive integer');
  return n;
}

function validateNonNegativeInt(value: unknown, field: string): number {
  const n = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw QuireError.invalid(field, 'must be a non-negative integer');
  return n;
}

function validateContentType(value: unknown): string {
  if (typeof value !== 'string' || value.length > 255 || !CONTENT_TYPE_RE.test(value)) {
    throw QuireError.invalid('contentType', 'must be a media type such as application/json');
  }
  return value;
}

function validateScopes(scopes: unknown): Scope[] {
  if (scopes === undefined || scopes === null) return [];
  if (!Array.isArray(scopes)) throw QuireError.invalid('scopes', 'must be a list of scopes');
  if (scopes.length > 100) throw QuireError.invalid('scopes', 'must list at most 100 scopes');
  const out: Scope[] = [];
  const seen = new Set<string>();
  scopes.forEach((s: unknown, i: number) => {
    const scope = validateScope(s, `scopes[${i}]`);
    const key = scopeKey(scope);
    if (!seen.has(key)) out.push(scope);
    seen.add(key);
  });
  return out;
}

function validateUseRolloutPlan(value: unknown, topic: Topic, scopes: Scope[], available: boolean): boolean {
  if (value === undefined || value === null || value === false) return false;
  if (value !== true) throw QuireError.invalid('useRolloutPlan', 'must be a boolean');
  if (!available) throw new QuireError(Code.UNIMPLEMENTED, 'useRolloutPlan: rollouts are not available here', { field: 'useRolloutPlan' });
  if (scopes.length > 0) throw QuireError.invalid('useRolloutPlan', 'give either scopes or useRolloutPlan, not both');
  if (topic.rolloutPlan === undefined) {
    throw new QuireError(Code.FAILED_PRECONDITION, `useRolloutPlan: topic ${topic.name} has no rollout plan`, { field: 'useRolloutPlan' });
  }
  return true;
}

function validateApplications(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw QuireError.invalid('allowedApplications', 'must be a list of application names');
  if (value.length > ALLOWED_APPS_MAX) throw QuireError.invalid('allowedApplications', `must list at most ${ALLOWED_APPS_MAX} applications`);
  if (value.length === 0) return undefined;
  return value.map((a: unknown, i: number) => validateText(a, `allowedApplications[${i}]`, LIMITS.scopeValueMax, true));
}

function settingsOf(t: Topic): Record<string, unknown> {
  const s: Record<string, unknown> = {
    owner: t.owner,
    description: t.description,
    retention: t.retention as RetentionPolicy,
    inlineThresholdBytes: t.inlineThresholdBytes,
  };
  if (t.rolloutPlan) s.rolloutPlan = t.rolloutPlan as RolloutPlan;
  if (t.jsonSchema) s.jsonSchema = t.jsonSchema;
  if (t.allowedApplications) s.allowedApplications = t.allowedApplications;
  if (t.encryption) s.encryption = t.encryption;
  return s;
}

/** Set (or clear, with null / 'off') a topic's encryption from a setting; false when the setting is absent. */
function applyEncryptionSetting(topic: Topic, setting: unknown): boolean {
  if (setting !== undefined) {
    const enc = validateTopicEncryption(setting);
    if (enc === undefined) delete topic.encryption;
    else topic.encryption = enc;
  }
  checkTopicEncryptionSettings(topic);
  return setting !== undefined;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function samePointer(a: DataPointer, b: DataPointer): boolean {
  if (a.kind === 'inline' && b.kind === 'inline') return a.blobId === b.blobId;
  if (a.kind === 's3' && b.kind === 's3') {
    const keys = new Set(a.locations.map((l) => `${l.region}/${l.key}`));
    return b.locations.every((l) => keys.has(`${l.region}/${l.key}`));
  }
  return false;
}

function checkExpected(common: ValidCommon, size: number, sha256: string): void {
  if (common.size !== undefined && common.size !== size) {
    throw QuireError.invalid('size', `expected ${common.size} bytes, received ${size}`);
  }
  if (common.sha256 !== undefined && common.sha256 !== sha256) {
    throw QuireError.invalid('sha256', `expected ${common.sha256}, the payload's SHA-256 is ${sha256}`);
  }
}

export function isJsonType(contentType: string): boolean {
  const base = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return base === 'application/json' || (base.startsWith('application/') && base.endsWith('+json'));
}

function checkJson(validate: ValidateFunction, bytes: Uint8Array): void {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new QuireError(Code.INVALID_ARGUMENT, `data: not valid JSON: ${(err as Error).message}`, { field: 'data' });
  }
  if (!validate(value)) {
    const e = validate.errors?.[0];
    const path = e?.instancePath ?? '';
    const field = `data${path.replaceAll('/', '.')}`;
    throw new QuireError(Code.INVALID_ARGUMENT, `${field}: does not match the topic's JSON Schema: ${e?.message ?? 'invalid'}`, { field });
  }
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  throw new QuireError(Code.INVALID_ARGUMENT, 'data: stream chunks must be bytes', { field: 'data' });
}

/** Read a whole stream into memory, RESOURCE_EXHAUSTED past `max` bytes. */
async function readAll(stream: Readable, max: number, field: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = toBuffer(chunk);
    total += buf.byteLength;
    if (total > max) {
      stream.destroy();
      throw new QuireError(Code.RESOURCE_EXHAUSTED, `${field}: more than ${max} bytes; too large to validate in memory`, { field });
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/**
 * Read at most `threshold + 1` bytes. When the stream ends first, `head` holds it all;
 * otherwise `rest` replays what was read and then the remainder of the stream.
 */
async function readUpTo(stream: Readable, threshold: number): Promise<{ head: Uint8Array; rest?: undefined } | { head?: undefined; rest: Readable }> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<unknown>;
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return { head: Buffer.concat(chunks) };
    const buf = toBuffer(r.value);
    chunks.push(buf);
    total += buf.byteLength;
    if (total > threshold) break;
  }
  async function* replay(): AsyncGenerator<Buffer> {
    for (const c of chunks) yield c;
    chunks.length = 0;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield toBuffer(r.value);
    }
  }
  return { rest: Readable.from(replay(), { objectMode: false }) };
}
