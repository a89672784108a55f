/**
 * `ConsumeService`: the consume side's one service layer, called by both transports.
 *
 * - `poll`: batched (long-)poll answered from `TopicCache` with the same
 *   `resolveVersion` / `candidateVersions` the client's fallback reader uses; only
 *   topics whose applicable version differs from the consumer's `knownVersion`; every
 *   version passes the consistency check first. Held polls wait in a `WaiterRegistry`
 *   and re-evaluate when one of their topics changes.
 * - fleet reports from the subscriptions, aggregated per (topic, instance) in memory and
 *   flushed to the store every few seconds (no write per poll).
 * - history (`getVersion`, `listVersions`, `versionAt`, `readInline`): may read the store.
 */
import {
  Code,
  QuireError,
  activePins,
  applicationMayConsume,
  candidateVersions,
  latestPerScope,
  resolveVersion,
  validatePageLimit,
  validateTopicName,
} from '@quire/core';
import { Readable } from 'node:stream';
import type { BlobStore, Clock, ConsumerIdentity, FleetReport, MetadataStore, Release, Scope, VersionRecord } from '@quire/core';
import type { TopicCache, TopicState } from './cache.ts';
import type { ConsistencyChecker } from './consistency.ts';
import { AppLimits, type AppLimitsOptions } from './limiter.ts';
import { WaiterRegistry, type Waiter } from './waiters.ts';

export const LIMITS = {
  /** Subscriptions in one poll. */
  maxSubscriptions: 500,
  /** Longest long-poll. */
  maxWaitMs: 60_000,
  /** Free identity attributes and their sizes. */
  maxAttributes: 32,
  maxAttributeLength: 256,
  /** Fleet report error text kept. */
  maxErrorLength: 1024,
} as const;

/** The identity fields with their own place in the request. */
const NAMED_IDENTITY = ['region', 'application', 'cluster', 'instance'] as const;

export interface IdentityInput {
  region?: unknown;
  application?: unknown;
  cluster?: unknown;
  instance?: unknown;
  attributes?: unknown;
}

export interface SubscriptionInput {
  topic?: unknown;
  knownVersion?: unknown;
  appliedVersion?: unknown;
  failedVersion?: unknown;
  error?: unknown;
}

export interface PollInput {
  identity?: unknown;
  subscriptions?: unknown;
  waitMs?: unknown;
}

/** A version as handed out: its record (S3 locations in the consumer's region first) and its active scopes. */
export interface VersionView extends VersionRecord {
  scopes: Scope[];
}

export interface TopicUpdate {
  topic: string;
  version: VersionView;
  /** The bytes, for an inline version. */
  inlineData?: Uint8Array;
  via: 'release' | 'pin';
}

export interface TopicStatus {
  topic: string;
  code: Code;
  message: string;
}

export interface PollResult {
  updates: TopicUpdate[];
  errors: TopicStatus[];
  /** Suggested wait before the next poll (0 = the client's own schedule). */
  nextPollMs: number;
  /** Answered from a cache the store has not refreshed for a while. */
  stale: boolean;
}

export interface ReadInlineResult {
  data: Uint8Array;
  sha256: string;
  contentType: string;
}

interface Sub {
  topic: string;
  knownVersion: number;
  appliedVersion: number;
  failedVersion: number;
  error: string;
}

interface PollRequest {
  identity: ConsumerIdentity;
  subs: Sub[];
  waitMs: number;
}

export interface ConsumeServiceOptions {
  cache: TopicCache;
  checker: ConsistencyChecker;
  store: MetadataStore;
  /** Where blob-backed versions' bytes are, for `openData`. */
  blobs: BlobStore;
  clock: Clock;
  /** Fleet report flush period (default 5000 ms). */
  fleetFlushMs?: number;
  /** Per-application limits (see limiter.ts); defaults when omitted. */
  limits?: AppLimits | AppLimitsOptions;
  /**
   * When draining, each answer suggests a re-arm delay (`nextPollMs`) drawn uniformly from
   * [0, drainSpreadMs), so a whole fleet does not re-connect elsewhere in one burst
   * (default 3000 ms).
   */
  drainSpreadMs?: number;
  onError?: (err: unknown, what: string) => void;
}

/** Inline bytes one poll answer may carry (the gRPC message limit is 16 MiB). */
export const POLL_INLINE_BUDGET_BYTES = 8 * 1024 * 1024;

export class ConsumeService {
  readonly #cache: TopicCache;
  readonly #checker: ConsistencyChecker;
  readonly #store: MetadataStore;
  readonly #blobs: BlobStore;
  readonly #clock: Clock;
  readonly #onError: (err: unknown, what: string) => void;
  readonly #waiters = new WaiterRegistry();
  readonly #fleet = new Map<string, FleetReport>();
  readonly #unsubscribe: () => void;
  readonly #fleetTimer: NodeJS.Timeout;
  readonly #recheckTimer: NodeJS.Timeout;
  readonly #limits: AppLimits;
  readonly #drainSpreadMs: number;
  #rechecking = false;
  #flushing: Promise<void> | undefined;
  #closing = false;

  constructor(options: ConsumeServiceOptions) {
    this.#cache = options.cache;
    this.#checker = options.checker;
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#clock = options.clock;
    this.#onError = options.onError ?? (() => {});
    this.#unsubscribe = this.#cache.onChange((topic) => {
      const state = this.#cache.get(topic);
      if (state !== undefined) {
        this.#checker.prune(topic, new Set(state.versions.keys()));
        this.#warm(state);
      }
      this.#waiters.wake(topic);
    });
    this.#fleetTimer = setInterval(() => void this.flushFleetReports(), options.fleetFlushMs ?? 5000);
    this.#fleetTimer.unref();
    this.#limits = options.limits instanceof AppLimits ? options.limits : new AppLimits(options.limits);
    this.#drainSpreadMs = options.drainSpreadMs ?? 3000;
    // A version that failed its consistency check (upload still landing, S3 or the store
    // briefly down) may pass later with no change in the cache: re-check the failed ones
    // of topics with held polls, and wake those polls when one passes.
    this.#recheckTimer = setInterval(() => void this.recheckFailed(), Math.max(100, Math.floor(this.#checker.recheckMs / 2)));
    this.#recheckTimer.unref();
  }

  /** Per-application limits in force (load, refusals). */
  get limits(): AppLimits {
    return this.#limits;
  }

  /** Re-run failed consistency checks of watched topics; wake the held polls of those that now pass. */
  async recheckFailed(): Promise<number> {
    if (this.#rechecking || this.#closing) return 0;
    this.#rechecking = true;
    try {
      const passed = await this.#checker.recheckFailed((topic) => this.#waiters.watching(topic) > 0);
      for (const topic of passed) this.#waiters.wake(topic);
      return passed.size;
    } catch (err) {
      this.#onError(err, 'consistency re-check');
      return 0;
    } finally {
      this.#rechecking = false;
    }
  }

  /** True once draining started (transports close their connections after answering). */
  get closing(): boolean {
    return this.#closing;
  }

  /** Long-polls currently held. */
  get heldPolls(): number {
    return this.#waiters.size;
  }

  // ---- poll -----------------------------------------------------------------------------------

  async poll(input: PollInput, signal?: AbortSignal): Promise<PollResult> {
    const req = parsePoll(input);
    this.#recordFleet(req);
    const app = req.identity.application;
    if (this.#closing) return this.#limits.run(app, async () => ({ ...(await this.#evaluate(req)), nextPollMs: this.#rearmDelay() }));
    if (req.waitMs === 0) return this.#limits.run(app, () => this.#evaluate(req));
    const release = this.#limits.hold(app);
    return this.#hold(req, signal).finally(release);
  }

  /**
   * Hold until something changes for this consumer, the wait ends, the client goes away
   * or the service drains. The waiter is registered before the first evaluation, so a
   * change landing during it is not missed (it triggers one more evaluation).
   */
  #hold(req: PollRequest, signal: AbortSignal | undefined): Promise<PollResult> {
    return new Promise<PollResult>((resolve, reject) => {
      let done = false;
      let evaluating = false;
      let again = false;
      const finish = (result: PollResult | undefined, err?: unknown): void => {
        if (done) return;
        done = true;
        remove();
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (result === undefined) reject(err);
        else resolve(result);
      };
      // Per-topic errors (unknown topic, not allowed) do not end a held poll: the topic may
      // appear while we wait, and a consumer with a typo must not spin. They are answered
      // with the updates, or when the wait ends.
      let lastErrors: TopicStatus[] = [];
      const empty = (): PollResult => ({ updates: [], errors: lastErrors, nextPollMs: 0, stale: this.#cache.stale });
      const run = (): void => {
        if (done) return;
        if (evaluating) {
          again = true;
          return;
        }
        evaluating = true;
        // Admitted by hold(): a publish waking every held poll must not refuse most of them.
        this.#limits.run(req.identity.application, () => this.#evaluate(req), true).then(
          (result) => {
            evaluating = false;
            lastErrors = result.errors;
            if (result.updates.length > 0 || this.#closing) finish(result);
            else if (again) {
              again = false;
              run();
            }
          },
          (err: unknown) => finish(undefined, err),
        );
      };
      const waiter: Waiter = {
        notify: (reason) => (reason === 'drain' ? finish({ ...empty(), nextPollMs: this.#rearmDelay() }) : run()),
      };
      const onAbort = (): void => finish(empty());
      const remove = this.#waiters.add(
        req.subs.map((s) => s.topic),
        waiter,
      );
      const timer = setTimeout(() => finish(empty()), req.waitMs);
      if (signal?.aborted) return finish(empty());
      signal?.addEventListener('abort', onAbort, { once: true });
      run();
    });
  }

  async #evaluate(req: PollRequest): Promise<PollResult> {
    const budget = { inlineBytes: POLL_INLINE_BUDGET_BYTES };
    const updates: TopicUpdate[] = [];
    const errors: TopicStatus[] = [];
    await Promise.all(
      req.subs.map(async (sub) => {
        const state = this.#cache.get(sub.topic);
        if (state === undefined) {
          errors.push({ topic: sub.topic, code: Code.NOT_FOUND, message: `topic ${sub.topic} not found` });
          return;
        }
        if (!applicationMayConsume(state.topic.allowedApplications, req.identity.application)) {
          errors.push({ topic: sub.topic, code: Code.PERMISSION_DENIED, message: `application ${JSON.stringify(req.identity.application ?? '')} may not subscribe to ${sub.topic}` });
          return;
        }
        const update = await this.#updateFor(state, req.identity, sub.knownVersion, budget);
        if (update !== undefined) updates.push(update);
      }),
    );
    // Request order, whatever order the checks finished in.
    const order = new Map(req.subs.map((s, i) => [s.topic, i]));
    const byRequest = (a: { topic: string }, b: { topic: string }) => (order.get(a.topic) ?? 0) - (order.get(b.topic) ?? 0);
    return { updates: updates.sort(byRequest), errors: errors.sort(byRequest), nextPollMs: 0, stale: this.#cache.stale };
  }

  /** The version to hand this consumer, if it differs from what it holds and is whole. */
  async #updateFor(state: TopicState, identity: ConsumerIdentity, known: number, budget: { inlineBytes: number }): Promise<TopicUpdate | undefined> {
    // The common case (nothing new) costs one resolveVersion, no sort.
    const resolution = resolveVersion(state.resolution, identity);
    if (resolution === undefined || resolution.version === known) return undefined;
    const region = identity.region;
    const whole = async (n: number): Promise<VersionRecord | undefined> => {
      const record = state.versions.get(n);
      return record !== undefined && (await this.#checker.check(record, region)).ok ? record : undefined;
    };
    let record = await whole(resolution.version);
    // The newest is not whole: a consumer that has data keeps it ("no update"); one with
    // nothing walks back through the candidates to the newest whole version.
    if (record === undefined) {
      if (known > 0) return undefined;
      for (const n of candidateVersions(state.resolution, identity)) {
        if (n === resolution.version) continue;
        record = await whole(n);
        if (record !== undefined) break;
      }
      if (record === undefined) return undefined;
    }
    // Inline bytes ride in the answer while the answer stays well under the gRPC message
    // limit; past the budget the descriptor goes alone and the SDK reads the bytes with
    // ReadInline (one huge answer would fail every poll of this consumer).
    let inlineData: Uint8Array | undefined;
    if (record.pointer.kind === 'inline') {
      if (record.size <= budget.inlineBytes) {
        budget.inlineBytes -= record.size;
        // The store may be down while the cache serves: that topic gets no update this
        // time (the consumer keeps what it has), the others are answered.
        inlineData = await this.#inlineOf(record).catch((err: unknown) => {
          this.#onError(err, `inline data of ${record.topic} version ${record.version}`);
          return undefined;
        });
        if (inlineData === undefined) return undefined;
      }
    }
    return {
      topic: state.topic.name,
      version: viewOf(record, state.releases, region),
      ...(inlineData === undefined ? {} : { inlineData }),
      via: resolution.via,
    };
  }

  async #inlineOf(record: VersionRecord): Promise<Uint8Array | undefined> {
    if (record.pointer.kind !== 'inline') return undefined;
    return this.#checker.cachedInline(record.topic, record.version) ?? (await this.#store.getInlineData(record.topic, record.pointer.blobId));
  }

  /**
   * Check, ahead of any poll, the versions most consumers will be handed: the latest of
   * each released scope and every pinned version (in each region they are stored in), so
   * the consistency check's store reads happen on a change, not on a poll.
   */
  #warm(state: TopicState): void {
    const versions = new Set<number>(latestPerScope(state.resolution).values());
    for (const p of activePins(state.resolution)) versions.add(p.version);
    for (const n of versions) {
      const record = state.versions.get(n);
      if (record === undefined) continue;
      const regions = record.pointer.kind === 's3' ? [undefined, ...new Set(record.pointer.locations.map((l) => l.region))] : [undefined];
      for (const region of regions) void this.#checker.check(record, region);
    }
  }

  /** A re-arm delay for a drained answer, spread over the drain window (at least 1 ms: 0 means "your own schedule"). */
  #rearmDelay(): number {
    return 1 + Math.floor(Math.random() * this.#drainSpreadMs);
  }

  // ---- fleet reports -----------------------------------------------------------------------------

  #recordFleet(req: PollRequest): void {
    const instance = req.identity.instance as string;
    const now = this.#clock.now();
    for (const s of req.subs) {
      const report: FleetReport = {
        topic: s.topic,
        instance,
        identity: req.identity,
        version: s.appliedVersion || s.knownVersion,
        reportedAt: now,
      };
      if (s.failedVersion > 0) report.failedVersion = s.failedVersion;
      if (s.error !== '') report.error = s.error;
      this.#fleet.set(`${s.topic}\u0000${instance}`, report);
    }
  }

  /** Write the aggregated reports (one upsert batch); kept for the next flush when it fails. */
  flushFleetReports(): Promise<void> {
    if (this.#fleet.size === 0) return this.#flushing ?? Promise.resolve();
    this.#flushing ??= (async () => {
      // Yield first: the `finally` below must run after `#flushing` is assigned.
      await Promise.resolve();
      try {
        while (this.#fleet.size > 0) {
          const batch = [...this.#fleet.entries()].slice(0, 500);
          for (const [k] of batch) this.#fleet.delete(k);
          try {
            await this.#store.putFleetReports(batch.map(([, r]) => r));
          } catch (err) {
            // Put back what no newer report replaced meanwhile; try again next period.
            for (const [k, r] of batch) if (!this.#fleet.has(k)) this.#fleet.set(k, r);
            this.#onError(err, 'fleet report flush');
            return;
          }
        }
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  // ---- history ------------------------------------------------------------------------------------

  async getVersion(topicInput: unknown, versionInput: unknown, identityInput?: unknown): Promise<VersionView> {
    const topic = validateTopicName(topicInput, 'topic');
    const version = positiveInt(versionInput, 'version');
    const identity = identityInput === undefined ? {} : parseIdentity(identityInput, false);
    const record = await this.#store.getVersion(topic, version);
    if (record === undefined) throw await this.#missing(topic, version);
    return viewOf(record, await this.#releasesOf(topic), identity.region);
  }

  async listVersions(
    topicInput: unknown,
    options: { limit?: unknown; cursor?: unknown; ascending?: unknown } = {},
  ): Promise<{ items: VersionView[]; next?: string }> {
    const topic = validateTopicName(topicInput, 'topic');
    const limit = validatePageLimit(options.limit, 100, 'limit');
    if (options.cursor !== undefined && typeof options.cursor !== 'string') throw QuireError.invalid('cursor', 'must be a string');
    if (options.ascending !== undefined && typeof options.ascending !== 'boolean') throw QuireError.invalid('ascending', 'must be a boolean');
    await this.#requireTopic(topic);
    const cursor = options.cursor === '' ? undefined : options.cursor;
    const page = await this.#store.listVersions(topic, {
      limit,
      order: options.ascending === true ? 'asc' : 'desc',
      ...(cursor === undefined ? {} : { cursor }),
    });
    const releases = await this.#releasesOf(topic);
    return { items: page.items.map((v) => viewOf(v, releases, undefined)), ...(page.next === undefined ? {} : { next: page.next }) };
  }

  /** The version that applied to this consumer at `at` (ms since the epoch), over the release and pin history. */
  async versionAt(topicInput: unknown, atInput: unknown, identityInput?: unknown): Promise<VersionView & { via: 'release' | 'pin' }> {
    const topic = validateTopicName(topicInput, 'topic');
    const at = positiveInt(atInput, 'at');
    const identity = identityInput === undefined ? {} : parseIdentity(identityInput, false);
    await this.#requireTopic(topic);
    const [releases, pins] = await Promise.all([this.#store.listReleases(topic), this.#store.listPins(topic)]);
    const referenced = [...new Set([...releases.map((r) => r.version), ...pins.map((p) => p.version)])];
    const records = referenced.length === 0 ? [] : await this.#store.getVersions(topic, referenced);
    const deleted = new Map<number, number>();
    for (const v of records) if (v.deletedAt !== undefined) deleted.set(v.version, v.deletedAt);
    const resolution = resolveVersion({ releases, pins, deleted }, identity, at);
    const record = resolution === undefined ? undefined : records.find((v) => v.version === resolution.version);
    if (resolution === undefined || record === undefined) {
      throw new QuireError(Code.NOT_FOUND, `no version of ${topic} applied to this consumer at ${new Date(at).toISOString()}`, { field: 'at' });
    }
    return { ...viewOf(record, releases, identity.region), via: resolution.via };
  }

  async readInline(topicInput: unknown, versionInput: unknown): Promise<ReadInlineResult> {
    const topic = validateTopicName(topicInput, 'topic');
    const version = positiveInt(versionInput, 'version');
    const record = await this.#store.getVersion(topic, version);
    if (record === undefined) throw await this.#missing(topic, version);
    if (record.deletedAt !== undefined) throw new QuireError(Code.NOT_FOUND, `${topic} version ${version} was deleted`, { field: 'version' });
    if (record.pointer.kind !== 'inline') {
      throw new QuireError(Code.FAILED_PRECONDITION, `version: ${topic} version ${version} is stored in S3; read it from its locations`, { field: 'version' });
    }
    const data = this.#checker.cachedInline(topic, version) ?? (await this.#store.getInlineData(topic, record.pointer.blobId));
    if (data === undefined) throw new QuireError(Code.DATA_LOSS, `inline data of ${topic} version ${version} is missing`);
    return { data, sha256: record.sha256, contentType: record.contentType };
  }

  /**
   * Any version's bytes as a stream: inline bytes from the store, blob data from the blob
   * store (the region asked for first, then the version's other regions). The caller (the
   * SDK) verifies size and SHA-256.
   */
  async openData(topicInput: unknown, versionInput: unknown, region?: string): Promise<{ record: VersionRecord; body: Readable }> {
    const topic = validateTopicName(topicInput, 'topic');
    const version = positiveInt(versionInput, 'version');
    const record = await this.#store.getVersion(topic, version);
    if (record === undefined) throw await this.#missing(topic, version);
    if (record.deletedAt !== undefined) throw new QuireError(Code.NOT_FOUND, `${topic} version ${version} was deleted`, { field: 'version' });
    if (record.pointer.kind === 'inline') {
      const inline = await this.readInline(topic, version);
      return { record, body: Readable.from([Buffer.from(inline.data.buffer, inline.data.byteOffset, inline.data.byteLength)]) };
    }
    const locations = record.pointer.locations;
    const key = locations[0]?.key;
    if (key === undefined) throw new QuireError(Code.DATA_LOSS, `${topic} version ${version} has no data location`);
    const known = new Set(this.#blobs.regions);
    const regions = [...new Set([...(region ? [region] : []), ...locations.map((l) => l.region)])].filter((r) => known.has(r));
    if (regions.length === 0) throw new QuireError(Code.UNAVAILABLE, `${topic} version ${version} is stored in regions this service does not reach`);
    const got = await this.#blobs.get(key, { regions });
    return { record, body: got.body };
  }

  async #requireTopic(topic: string): Promise<void> {
    if (this.#cache.get(topic) !== undefined) return;
    if ((await this.#store.getTopic(topic)) === undefined) throw QuireError.notFound(`topic ${topic}`, 'topic');
  }

  async #missing(topic: string, version: number): Promise<QuireError> {
    await this.#requireTopic(topic);
    return QuireError.notFound(`${topic} version ${version}`, 'version');
  }

  async #releasesOf(topic: string): Promise<readonly Release[]> {
    return this.#cache.get(topic)?.releases ?? (await this.#store.listReleases(topic));
  }

  // ---- lifecycle ------------------------------------------------------------------------------------

  /** Answer every held long-poll now (with no update) and answer later polls at once. */
  drain(): number {
    this.#closing = true;
    return this.#waiters.drainAll();
  }

  /** Drain, stop the flush timer and write the last fleet reports. */
  async close(): Promise<void> {
    this.drain();
    this.#unsubscribe();
    clearInterval(this.#fleetTimer);
    clearInterval(this.#recheckTimer);
    await this.flushFleetReports().catch(() => {});
  }
}

/** The record with its S3 locations in `region` first and the scopes of its active releases. */
export function viewOf(v: VersionRecord, releases: readonly Release[], region: string | undefined): VersionView {
  const scopes = releases.filter((r) => r.version === v.version && r.withdrawnAt === undefined).map((r) => ({ ...r.scope }));
  if (v.pointer.kind !== 's3' || region === undefined) return { ...v, scopes };
  const mine = v.pointer.locations.filter((l) => l.region === region);
  const others = v.pointer.locations.filter((l) => l.region !== region);
  return { ...v, pointer: { kind: 's3', locations: [...mine, ...others] }, scopes };
}

// ---- request parsing (both transports hand over plain objects) -------------------------------------

function positiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw QuireError.invalid(field, 'must be a positive integer');
  return value;
}

function nonNegativeInt(value: unknown, field: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw QuireError.invalid(field, 'must be a non-negative integer');
  return value;
}

function optString(value: unknown, field: string, max: number): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw QuireError.invalid(field, 'must be a string');
  if (value.length > max) throw QuireError.invalid(field, `must be at most ${max} characters`);
  return value;
}

/** A consumer identity: the named fields plus free attributes (which may not contradict them). */
export function parseIdentity(input: unknown, requireInstance: boolean): ConsumerIdentity {
  if (input === undefined || input === null) {
    if (requireInstance) throw QuireError.invalid('identity', 'is required (at least identity.instance)');
    return {};
  }
  if (typeof input !== 'object' || Array.isArray(input)) throw QuireError.invalid('identity', 'must be an object');
  const i = input as IdentityInput;
  const out: ConsumerIdentity = {};
  const attrs = i.attributes;
  if (attrs !== undefined && attrs !== null) {
    if (typeof attrs !== 'object' || Array.isArray(attrs)) throw QuireError.invalid('identity.attributes', 'must be an object of string values');
    const entries = Object.entries(attrs as Record<string, unknown>);
    if (entries.length > LIMITS.maxAttributes) throw QuireError.invalid('identity.attributes', `at most ${LIMITS.maxAttributes} attributes`);
    for (const [k, v] of entries) {
      if (k === '' || k.length > LIMITS.maxAttributeLength) throw QuireError.invalid('identity.attributes', `attribute names are 1 to ${LIMITS.maxAttributeLength} characters`);
      const s = optString(v, `identity.attributes.${k}`, LIMITS.maxAttributeLength);
      if (s !== undefined) out[k] = s;
    }
  }
  for (const name of NAMED_IDENTITY) {
    const v = optString(i[name], `identity.${name}`, LIMITS.maxAttributeLength);
    if (v === undefined) continue;
    if (out[name] !== undefined && out[name] !== v) {
      throw QuireError.invalid(`identity.attributes.${name}`, `contradicts identity.${name}`);
    }
    out[name] = v;
  }
  if (requireInstance && out.instance === undefined) throw QuireError.invalid('identity.instance', 'is required');
  return out;
}

function parsePoll(input: PollInput): PollRequest {
  if (typeof input !== 'object' || input === null) throw QuireError.invalid('request', 'must be an object');
  const identity = parseIdentity(input.identity, true);
  const list = input.subscriptions;
  if (!Array.isArray(list) || list.length === 0) throw QuireError.invalid('subscriptions', 'must list at least one topic');
  if (list.length > LIMITS.maxSubscriptions) {
    throw new QuireError(
      Code.RESOURCE_EXHAUSTED,
      `subscriptions: at most ${LIMITS.maxSubscriptions} topics per poll (got ${list.length}); split them over several polls`,
      { field: 'subscriptions' },
    );
  }
  const seen = new Set<string>();
  const subs = list.map((raw: unknown, idx): Sub => {
    const f = `subscriptions[${idx}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw QuireError.invalid(f, 'must be an object');
    const s = raw as SubscriptionInput;
    const topic = validateTopicName(s.topic, `${f}.topic`);
    if (seen.has(topic)) throw QuireError.invalid(`${f}.topic`, `${topic} is listed twice`);
    seen.add(topic);
    const error = optString(s.error, `${f}.error`, Infinity) ?? '';
    return {
      topic,
      knownVersion: nonNegativeInt(s.knownVersion, `${f}.knownVersion`),
      appliedVersion: nonNegativeInt(s.appliedVersion, `${f}.appliedVersion`),
      failedVersion: nonNegativeInt(s.failedVersion, `${f}.failedVersion`),
      error: error.slice(0, LIMITS.maxErrorLength),
    };
  });
  const waitMs = input.waitMs === undefined || input.waitMs === null ? 0 : input.waitMs;
  if (typeof waitMs !== 'number' || !Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > LIMITS.maxWaitMs) {
    throw QuireError.invalid('waitMs', `must be an integer between 0 and ${LIMITS.maxWaitMs}`);
  }
  return { identity, subs, waitMs };
}
