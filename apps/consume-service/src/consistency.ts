/**
 * The consistency check: before a version is handed out, is it whole? Its metadata is
 * readable and not deleted, and either its inline bytes are in the store with the
 * right size and SHA-256, or its S3 object exists — in the consumer's region when the
 * version has a location there (or, when that region cannot be reached at all, in another
 * of its regions: the SDK reads them in turn), else in any of its regions.
 *
 * Results are kept per (topic, version, region) for the life of the instance (a whole
 * version stays whole: versions are immutable, and deletion is seen by the cache), so
 * a poll never repeats a check. Failures are re-checked after `recheckMs` (an upload may
 * still be landing, S3 may have been briefly unreachable). Concurrent checks of the same
 * version share one promise (checks run at most `concurrency` at once). Small inline
 * payloads of the topics polled are kept in memory for polls, copied, in an LRU bounded
 * by bytes.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import pLimit, { type LimitFunction } from 'p-limit';
import type { BlobStore, Clock, MetadataStore, VersionRecord } from '@quire/core';

export interface ConsistencyOptions {
  store: MetadataStore;
  blobs: BlobStore;
  clock: Clock;
  /** Re-check a failed version after this long (default 5000 ms). */
  recheckMs?: number;
  /** Keep inline payloads up to this size in memory (default 64 KiB). */
  inlineCacheMaxBytes?: number;
  /**
   * At most this many bytes of inline payloads in memory, all topics together (default
   * 64 MiB); past it the least recently used go (a poll then reads them from the store).
   */
  inlineCacheTotalBytes?: number;
  /**
   * Checks running at once (default 64, as the topic cache's loads). The warm-up asks for one
   * check per active version of every topic at a cold start (10,000 at once at 10,000
   * topics): unbounded, their store reads and driver buffers all lived at once. The queue
   * drains as fast as the store answers; a poll asking for a queued check shares it.
   */
  concurrency?: number;
  onError?: (err: unknown, what: string) => void;
}

export interface CheckResult {
  ok: boolean;
  /** Why it is not whole (for logs). */
  reason?: string;
}

/** The one passing result (most results): shared, not one object per check. */
const WHOLE: CheckResult = Object.freeze({ ok: true });

interface Entry {
  /** What was checked, to check it again (`recheckFailed`). */
  record: VersionRecord;
  /** The region the check is about (`#regionScope`), undefined for any. */
  scope: string | undefined;
  result: Promise<CheckResult>;
  /** Settled result, for the synchronous fast path. */
  settled?: CheckResult;
  at: number;
}

export class ConsistencyChecker {
  readonly #store: MetadataStore;
  readonly #blobs: BlobStore;
  readonly #clock: Clock;
  readonly #recheckMs: number;
  readonly #inlineMax: number;
  readonly #onError: (err: unknown, what: string) => void;
  readonly #limit: LimitFunction;
  /**
   * Results per topic, then per `version\0scope`: `prune` (called on every topic change, i.e.
   * for every topic during a cold start's first refresh) touches one topic's entries, not all
   * of them (scanning every key made a 10,000-topic cold start quadratic: bench/REPORT.md),
   * and the topic's name is held once, not in every key.
   */
  readonly #results = new Map<string, Map<string, Entry>>();
  /**
   * Inline payloads by `topic\0version`, bounded by bytes (lru-cache: the least recently
   * used go first). Each is a copy: the store's bytes may be a view into a larger buffer
   * (the driver's response frame), which a cached view would keep alive whole.
   */
  readonly #inline: LRUCache<string, Uint8Array>;
  /**
   * Topics whose inline bytes a poll asked for (`inlineData`): only their checks keep the
   * bytes. A topic nobody polls needs none in memory (at 10,000 topics the warm-up kept
   * ~10 MiB of bytes no one read); the first poll of a topic reads them from the store and
   * keeps them, and from then on its new versions are kept when checked, so
   * the polls woken by a publish read nothing.
   */
  readonly #polled = new Set<string>();
  /** Inline bytes being read from the store, by key (one read per version at a time). */
  readonly #reading = new Map<string, Promise<Uint8Array | undefined>>();

  constructor(options: ConsistencyOptions) {
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#clock = options.clock;
    this.#recheckMs = options.recheckMs ?? 5000;
    this.#onError = options.onError ?? (() => {});
    this.#limit = pLimit(options.concurrency ?? 64);
    const total = options.inlineCacheTotalBytes ?? 64 * 1024 * 1024;
    this.#inlineMax = Math.min(options.inlineCacheMaxBytes ?? 64 * 1024, total);
    // Size of an entry: its bytes plus its key and bookkeeping, so that many tiny payloads are bounded too.
    this.#inline = new LRUCache<string, Uint8Array>({ maxSize: Math.max(1, total), sizeCalculation: (bytes, key) => bytes.byteLength + key.length * 2 + 64 });
  }

  /** Is `v` whole for a consumer in `region` (may be undefined)? */
  check(v: VersionRecord, region: string | undefined): Promise<CheckResult> {
    if (v.deletedAt !== undefined) return Promise.resolve({ ok: false, reason: 'deleted' });
    const scope = this.#regionScope(v, region);
    const key = scope === undefined ? String(v.version) : `${v.version}\u0000${scope}`;
    let topic = this.#results.get(v.topic);
    const cached = topic?.get(key);
    const now = this.#clock.now();
    if (cached !== undefined && (cached.settled === undefined || cached.settled.ok || now - cached.at < this.#recheckMs)) {
      return cached.result;
    }
    const entry: Entry = { record: v, scope, at: now, result: Promise.resolve(WHOLE) };
    entry.result = this.#limit(() => this.#run(v, scope)).then(
      (r) => {
        entry.settled = r;
        entry.at = this.#clock.now();
        return r;
      },
      (err: unknown) => {
        this.#onError(err, `consistency check of ${v.topic} version ${v.version}`);
        const r = { ok: false, reason: `check failed: ${err instanceof Error ? err.message : String(err)}` };
        entry.settled = r;
        entry.at = this.#clock.now();
        return r;
      },
    );
    if (topic === undefined) {
      topic = new Map();
      this.#results.set(v.topic, topic);
    }
    topic.set(key, entry);
    return entry.result;
  }

  /** How long a failed check is kept before it is run again. */
  get recheckMs(): number {
    return this.#recheckMs;
  }

  /** Checks waiting for their turn (the warm-up's queue at a cold start). */
  get pending(): number {
    return this.#limit.pendingCount;
  }

  /** Bytes of inline payloads held in memory (bookkeeping included). */
  get inlineBytes(): number {
    return this.#inline.calculatedSize;
  }

  /**
   * Run again every failed check (past `recheckMs`) of the topics `wanted` accepts, and
   * return the topics where one now passes: a held long-poll of such a topic must be
   * re-evaluated (a failed check is otherwise re-run only when a poll asks).
   */
  async recheckFailed(wanted: (topic: string) => boolean): Promise<Set<string>> {
    const now = this.#clock.now();
    const due: Entry[] = [];
    for (const [topic, entries] of this.#results) {
      let watched: boolean | undefined;
      for (const e of entries.values()) {
        const s = e.settled;
        if (s === undefined || s.ok || s.reason === 'deleted' || now - e.at < this.#recheckMs) continue;
        watched ??= wanted(topic);
        if (watched) due.push(e);
      }
    }
    const passed = new Set<string>();
    await Promise.all(
      due.map(async (e) => {
        if ((await this.check(e.record, e.scope)).ok) passed.add(e.record.topic);
      }),
    );
    return passed;
  }

  /**
   * A version's inline bytes: from memory when an earlier check or read kept them, else read
   * from the store once (concurrent first polls share the read). The bytes of a checked,
   * whole inline version are then kept for the next polls, and the topic counts as polled
   * from now on, so its next versions are kept by their checks.
   */
  inlineData(record: VersionRecord): Promise<Uint8Array | undefined> {
    if (record.pointer.kind !== 'inline') return Promise.resolve(undefined);
    const { topic, version } = record;
    const key = `${topic}\u0000${version}`;
    const bytes = this.#inline.get(key);
    if (bytes !== undefined) return Promise.resolve(bytes);
    const reading = this.#reading.get(key);
    if (reading !== undefined) return reading;
    const entries = this.#results.get(topic);
    if (entries !== undefined) this.#polled.add(topic);
    const entry = entries?.get(String(version));
    const read = this.#store.getInlineData(topic, record.pointer.blobId).then((data) => {
      // Kept only if the check passed, the bytes are whole and the version was not pruned meanwhile.
      if (
        data !== undefined &&
        entry?.settled?.ok === true &&
        data.byteLength === entry.record.size &&
        data.byteLength <= this.#inlineMax &&
        this.#results.get(topic)?.get(String(version)) === entry
      ) {
        this.#inline.set(key, Uint8Array.prototype.slice.call(data));
      }
      return data;
    });
    this.#reading.set(key, read);
    void read.finally(() => this.#reading.delete(key)).catch(() => undefined);
    return read;
  }

  /** Forget everything about versions of `topic` not in `keep` (called when the cache drops them). */
  prune(topic: string, keep: ReadonlySet<number>): void {
    const entries = this.#results.get(topic);
    if (entries === undefined) return;
    for (const [k, e] of entries) {
      const version = e.record.version;
      if (keep.has(version)) continue;
      entries.delete(k);
      this.#inline.delete(`${topic}\u0000${version}`);
    }
    if (entries.size === 0) {
      this.#results.delete(topic);
      this.#polled.delete(topic);
    }
  }

  /** The region a check is about: the consumer's when the version has a location there, else any (undefined). */
  #regionScope(v: VersionRecord, region: string | undefined): string | undefined {
    if (v.pointer.kind !== 's3' || region === undefined || region === '') return undefined;
    return v.pointer.locations.some((l) => l.region === region) ? region : undefined;
  }

  async #run(v: VersionRecord, region: string | undefined): Promise<CheckResult> {
    const record = await this.#store.getVersion(v.topic, v.version);
    if (record === undefined) return { ok: false, reason: 'metadata missing' };
    if (record.deletedAt !== undefined) return { ok: false, reason: 'deleted' };
    const pointer = record.pointer;
    if (pointer.kind === 'inline') {
      const bytes = await this.#store.getInlineData(record.topic, pointer.blobId);
      if (bytes === undefined) return { ok: false, reason: 'inline data missing' };
      if (bytes.byteLength !== record.size) return { ok: false, reason: `inline data is ${bytes.byteLength} bytes, expected ${record.size}` };
      const sha = createHash('sha256').update(bytes).digest('hex');
      if (sha !== record.sha256) return { ok: false, reason: 'inline data checksum mismatch' };
      if (bytes.byteLength <= this.#inlineMax && this.#polled.has(record.topic)) this.#inline.set(`${record.topic}\u0000${record.version}`, Uint8Array.prototype.slice.call(bytes));
      return WHOLE;
    }
    const configured = new Set(this.#blobs.regions);
    const reachable = pointer.locations.filter((l) => configured.has(l.region));
    const locations = reachable.filter((l) => region === undefined || l.region === region);
    if (locations.length === 0) return { ok: false, reason: `no location in a region this instance can reach${region ? ` (${region})` : ''}` };
    const own = await this.#headAny(locations, record.size);
    if (own.ok || region === undefined || !own.unreachable) return own;
    // The consumer's region is down (not: the object is missing there): the SDK reads the
    // other regions in turn, so the version is whole when one of them holds it.
    const others = reachable.filter((l) => l.region !== region);
    if (others.length === 0) return own;
    const elsewhere = await this.#headAny(others, record.size);
    return elsewhere.ok ? { ok: true, reason: `${region} unreachable; whole in ${others.map((l) => l.region).join(', ')}` } : own;
  }

  /** Whole in one of `locations`? `unreachable` when every failure was an error, not a missing object. */
  async #headAny(locations: readonly { region: string; key: string }[], size: number): Promise<CheckResult & { unreachable?: boolean }> {
    let errors = 0;
    for (const l of locations) {
      let failed = false;
      const head = await this.#blobs.head(l.key, l.region).catch((err: unknown) => {
        this.#onError(err, `head ${l.region}:${l.key}`);
        failed = true;
        return undefined;
      });
      if (failed) errors++;
      if (head !== undefined) {
        if (head.size !== size) return { ok: false, reason: `object in ${l.region} is ${head.size} bytes, expected ${size}` };
        return WHOLE;
      }
    }
    const where = locations.map((l) => l.region).join(', ');
    return errors === locations.length ? { ok: false, reason: `unreachable: ${where}`, unreachable: true } : { ok: false, reason: `object missing in ${where}` };
  }
}
