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
 * version share one promise. Small inline payloads are kept in memory for polls.
 */
import { createHash } from 'node:crypto';
import type { BlobStore, Clock, MetadataStore, VersionRecord } from '@quire/core';

export interface ConsistencyOptions {
  store: MetadataStore;
  blobs: BlobStore;
  clock: Clock;
  /** Re-check a failed version after this long (default 5000 ms). */
  recheckMs?: number;
  /** Keep inline payloads up to this size in memory (default 64 KiB). */
  inlineCacheMaxBytes?: number;
  onError?: (err: unknown, what: string) => void;
}

export interface CheckResult {
  ok: boolean;
  /** Why it is not whole (for logs). */
  reason?: string;
}

interface Entry {
  /** What was checked, to check it again (`recheckFailed`). */
  record: VersionRecord;
  region: string | undefined;
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
  readonly #results = new Map<string, Entry>();
  readonly #inline = new Map<string, Uint8Array>();
  /**
   * Keys of #results / #inline per topic, so `prune` (called on every topic change, i.e. for
   * every topic during a cold start's first refresh) touches one topic's entries, not all of
   * them: scanning every key made a 10,000-topic cold start quadratic (bench/REPORT.md).
   */
  readonly #keysByTopic = new Map<string, Set<string>>();

  constructor(options: ConsistencyOptions) {
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#clock = options.clock;
    this.#recheckMs = options.recheckMs ?? 5000;
    this.#inlineMax = options.inlineCacheMaxBytes ?? 64 * 1024;
    this.#onError = options.onError ?? (() => {});
  }

  /** Is `v` whole for a consumer in `region` (may be undefined)? */
  check(v: VersionRecord, region: string | undefined): Promise<CheckResult> {
    if (v.deletedAt !== undefined) return Promise.resolve({ ok: false, reason: 'deleted' });
    const scope = this.#regionScope(v, region);
    const key = `${v.topic}\u0000${v.version}\u0000${scope ?? '*'}`;
    const cached = this.#results.get(key);
    const now = this.#clock.now();
    if (cached !== undefined && (cached.settled === undefined || cached.settled.ok || now - cached.at < this.#recheckMs)) {
      return cached.result;
    }
    const entry: Entry = { record: v, region, at: now, result: Promise.resolve({ ok: false }) };
    entry.result = this.#run(v, scope).then(
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
    this.#results.set(key, entry);
    this.#track(v.topic, key);
    return entry.result;
  }

  /** How long a failed check is kept before it is run again. */
  get recheckMs(): number {
    return this.#recheckMs;
  }

  /**
   * Run again every failed check (past `recheckMs`) of the topics `wanted` accepts, and
   * return the topics where one now passes: a held long-poll of such a topic must be
   * re-evaluated (a failed check is otherwise re-run only when a poll asks).
   */
  async recheckFailed(wanted: (topic: string) => boolean): Promise<Set<string>> {
    const now = this.#clock.now();
    const due: Entry[] = [];
    for (const e of this.#results.values()) {
      const s = e.settled;
      if (s === undefined || s.ok || s.reason === 'deleted' || now - e.at < this.#recheckMs) continue;
      if (wanted(e.record.topic)) due.push(e);
    }
    const passed = new Set<string>();
    await Promise.all(
      due.map(async (e) => {
        if ((await this.check(e.record, e.region)).ok) passed.add(e.record.topic);
      }),
    );
    return passed;
  }

  /** Inline bytes kept in memory by an earlier check, if any. */
  cachedInline(topic: string, version: number): Uint8Array | undefined {
    return this.#inline.get(`${topic}\u0000${version}`);
  }

  /** Forget everything about versions of `topic` not in `keep` (called when the cache drops them). */
  prune(topic: string, keep: ReadonlySet<number>): void {
    const keys = this.#keysByTopic.get(topic);
    if (keys === undefined) return;
    const prefix = `${topic}\u0000`;
    for (const k of keys) {
      const version = Number(k.slice(prefix.length).split('\u0000')[0]);
      if (keep.has(version)) continue;
      this.#results.delete(k);
      this.#inline.delete(k);
      keys.delete(k);
    }
    if (keys.size === 0) this.#keysByTopic.delete(topic);
  }

  #track(topic: string, key: string): void {
    let keys = this.#keysByTopic.get(topic);
    if (keys === undefined) {
      keys = new Set();
      this.#keysByTopic.set(topic, keys);
    }
    keys.add(key);
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
      if (bytes.byteLength <= this.#inlineMax) {
        const key = `${record.topic}\u0000${record.version}`;
        this.#inline.set(key, bytes);
        this.#track(record.topic, key);
      }
      return { ok: true };
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
        return { ok: true };
      }
    }
    const where = locations.map((l) => l.region).join(', ');
    return errors === locations.length ? { ok: false, reason: `unreachable: ${where}`, unreachable: true } : { ok: false, reason: `object missing in ${where}` };
  }
}
