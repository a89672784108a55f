/**
 * `TopicCache`: every topic's state in memory, so polls never read the metadata store.
 * Per topic: its settings, its active releases and pins (not the withdrawn releases nor
 * the removed pins: every decision the cache serves is about now — `resolveVersion`,
 * `candidateVersions` and the warm-up at `at` = Infinity, a version's scopes from its
 * active releases — while "at time T" reads the history from the store), the descriptors
 * of every version an active release or pin points at (and which of them are deleted), and
 * — filled by the consistency checker — the bytes of small inline versions.
 *
 * Two refresh paths (see docs/adr/0004-consume-cache-refresh.md):
 * - a full refresh every `refreshMs` (default 5 s), paging through the topics' state stamps
 *   (`listTopicStamps`) and reloading only the topics whose stamp moved;
 * - a prompt refresh of only the changed topics, polling `store.changesSince(cursor)`
 *   every `changePollMs` (default 150 ms), and at once on a change hint (`hint`: that
 *   read, plus a direct reload of the hinted topic alongside it).
 * When a topic's state changes, the `onChange` listeners are called with its name (the
 * service wakes that topic's long-polls in one pass).
 */
import pLimit from 'p-limit';
import type { Clock, MetadataStore, Pin, Release, ResolutionState, Topic, TopicStamp, VersionRecord } from '@quire/core';
import { topicChanged } from './diagnostics.ts';

export interface TopicState {
  topic: Topic;
  /** The topic's releases not withdrawn (a superseded one stays: polls walk back to it). */
  releases: readonly Release[];
  /** The topic's pins not removed. */
  pins: readonly Pin[];
  /** Descriptors of the versions active releases / pins point at. */
  versions: ReadonlyMap<number, VersionRecord>;
  /** The input of `resolveVersion` / `candidateVersions`. */
  resolution: ResolutionState;
  /**
   * The topic's state stamp read just before this state was loaded by a full refresh
   * (undefined after a change-feed reload: the next full refresh reloads it).
   */
  stamp: string | undefined;
  /** False when the last load saw the stamp move: the next full refresh reloads it once more. */
  settled: boolean;
  loadedAt: number;
}

export interface TopicCacheOptions {
  store: MetadataStore;
  clock: Clock;
  /** Full refresh period (default 5000 ms). */
  refreshMs?: number;
  /** Change-feed poll period (default 150 ms). */
  changePollMs?: number;
  /** The cache is stale when no full refresh succeeded for this long (default 3 × refreshMs). */
  staleAfterMs?: number;
  /**
   * Topics loaded at once during a full refresh or a change burst (default 16). The cold
   * start's peak heap, and so the process's RSS for good (V8 keeps the pages), grows with
   * the loads in flight: at 10,000 topics 64 measured 248–250 MiB RSS against 221–227 MiB
   * for 16, with the same cold start (6.3–8.5 s) on a 2-core machine beside Cassandra.
   */
  concurrency?: number;
  /**
   * Each full refresh also reloads 1 / `sweepEvery` of the topics whatever their stamp, so
   * every topic is re-read at least every `sweepEvery` refreshes (default 60: 5 min at 5 s;
   * 0: no sweep).
   */
  sweepEvery?: number;
  /** Called with unexpected refresh errors (the store being down included). */
  onError?: (err: unknown, what: string) => void;
}

/** Topics per listTopicStamps page (the store's maximum page size). */
const PAGE = 1000;

export class TopicCache {
  readonly #store: MetadataStore;
  readonly #clock: Clock;
  readonly #refreshMs: number;
  readonly #changePollMs: number;
  readonly #staleAfterMs: number;
  readonly #concurrency: number;
  readonly #sweepEvery: number;
  readonly #onError: (err: unknown, what: string) => void;
  readonly #topics = new Map<string, TopicState>();
  /** Per topic: sequence number of the newest load applied (an older, slower load never overwrites it). */
  readonly #applied = new Map<string, number>();
  readonly #listeners = new Set<(topic: string) => void>();
  #seq = 0;
  #sweep = 0;
  #cursor: string | undefined;
  #lastRefreshOkAt: number | undefined;
  #lastChangePollOkAt: number | undefined;
  /** When the last store read of a refresh / change poll failed, and why (cleared by the next success). */
  #storeFailingSince: number | undefined;
  #lastStoreError: string | undefined;
  #lastReportedAt: number | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #changeTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #changeRunning: Promise<void> | undefined;
  /** Change-feed reads (timer or `pollNow`): started, one in flight, another asked for meanwhile. */
  #changePolling = false;
  #changeInFlight = false;
  #pollAgain = false;
  /** Hinted topic reloads in flight (one per topic), and whether another hint came meanwhile. */
  readonly #hinted = new Map<string, { again: boolean; done: Promise<void> }>();
  #stopped = false;

  constructor(options: TopicCacheOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#refreshMs = options.refreshMs ?? 5000;
    this.#changePollMs = options.changePollMs ?? 150;
    this.#staleAfterMs = options.staleAfterMs ?? 3 * this.#refreshMs;
    this.#concurrency = options.concurrency ?? 16;
    this.#sweepEvery = Math.max(0, Math.floor(options.sweepEvery ?? 60));
    this.#onError = options.onError ?? (() => {});
  }

  /**
   * Take the change-feed cursor, then do the first full refresh (throws when it fails:
   * a service should not start with an empty cache), then start both timers.
   */
  async start(): Promise<void> {
    this.#cursor = (await this.#store.changesSince()).cursor;
    await this.refresh();
    this.#scheduleRefresh();
    this.#changePolling = true;
    this.#scheduleChangePoll();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#changeTimer);
    await Promise.allSettled([this.#running, this.#changeRunning, ...[...this.#hinted.values()].map((h) => h.done)]);
  }

  /** Listen for topic state changes; returns the unsubscribe function. */
  onChange(listener: (topic: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get(topic: string): TopicState | undefined {
    return this.#topics.get(topic);
  }

  get size(): number {
    return this.#topics.size;
  }

  /** Health: when the last full refresh succeeded, how old the cache is, whether it is stale. */
  health(): { stale: boolean; lastRefreshOkAt: number | undefined; ageMs: number | undefined; topics: number } {
    const now = this.#clock.now();
    const ageMs = this.#lastRefreshOkAt === undefined ? undefined : now - this.#lastRefreshOkAt;
    const changeFeedDown =
      this.#lastChangePollOkAt !== undefined && now - this.#lastChangePollOkAt > Math.max(this.#staleAfterMs, 20 * this.#changePollMs);
    return { stale: ageMs === undefined || ageMs > this.#staleAfterMs || changeFeedDown, lastRefreshOkAt: this.#lastRefreshOkAt, ageMs, topics: this.#topics.size };
  }

  /**
   * Stale: no full refresh for a while, the change feed silent, or the store failing now.
   * While the store is down polls are still answered from memory (stale but up).
   */
  get stale(): boolean {
    return this.#storeFailingSince !== undefined || this.health().stale;
  }

  /** False while the last read of the metadata store (refresh or change poll) failed. */
  get storeHealthy(): boolean {
    return this.#storeFailingSince === undefined;
  }

  /** Since when the store has been failing (undefined when healthy) and its last error message. */
  get storeFailure(): { since: number; error: string } | undefined {
    return this.#storeFailingSince === undefined ? undefined : { since: this.#storeFailingSince, error: this.#lastStoreError ?? '' };
  }

  /** Time since the cache was last known in step with the store (last successful full refresh or change poll). */
  get cacheAgeMs(): number | undefined {
    const last = Math.max(this.#lastRefreshOkAt ?? -Infinity, this.#lastChangePollOkAt ?? -Infinity);
    return Number.isFinite(last) ? this.#clock.now() - last : undefined;
  }

  #storeOk(): void {
    this.#storeFailingSince = undefined;
    this.#lastReportedAt = undefined;
    this.#lastStoreError = undefined;
  }

  #storeFailed(err: unknown, what: string): void {
    const now = this.#clock.now();
    this.#storeFailingSince ??= now;
    this.#lastStoreError = err instanceof Error ? err.message : String(err);
    // Reported when it starts, then every 10 s (the change feed retries every few ms).
    if (this.#lastReportedAt === undefined || now - this.#lastReportedAt >= 10_000 || now === this.#storeFailingSince) {
      this.#lastReportedAt = now;
      this.#onError(err, `${what} (serving polls from the cache since ${new Date(this.#storeFailingSince).toISOString()})`);
    }
  }

  /**
   * Full refresh: page through every topic's state stamp (`listTopicStamps`, one cheap read
   * per 1000 topics) and reload only the topics that are new, whose stamp moved, that have
   * no stamp, or whose stamp moved at the last reload (reloaded once more: a stamp
   * replicated ahead of its state, across data centers, is caught on the next pass);
   * plus a sweep of 1 / `sweepEvery` of all topics whatever their stamp. Drops topics
   * that are gone. See docs/adr/0008-topic-state-stamps.md.
   */
  async refresh(): Promise<void> {
    // The whole listing first (one read per 1000 topics), then the loads through one
    // limiter: no idle tail at the end of each page.
    const listed: TopicStamp[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#store.listTopicStamps({ limit: PAGE, ...(cursor === undefined ? {} : { cursor }) });
      listed.push(...page.items);
      cursor = page.next;
    } while (cursor !== undefined && !this.#stopped);
    if (this.#stopped) return;
    const seen = new Set<string>();
    const limit = pLimit(this.#concurrency);
    const sweep = this.#sweepEvery === 0 ? -1 : this.#sweep++ % this.#sweepEvery;
    const loads: Promise<void>[] = [];
    listed.forEach(({ name, stamp }, position) => {
      seen.add(name);
      const current = this.#topics.get(name);
      const swept = sweep >= 0 && position % this.#sweepEvery === sweep;
      if (current === undefined || stamp === undefined || current.stamp !== stamp || !current.settled || swept) {
        loads.push(limit(() => (this.#stopped ? Promise.resolve() : this.refreshTopic(name, stamp))));
      }
    });
    await settleAll(loads);
    if (this.#stopped) return;
    for (const name of [...this.#topics.keys()]) {
      if (!seen.has(name)) {
        // Gone from the store (or created and removed meanwhile): check before dropping.
        await this.refreshTopic(name);
      }
    }
    this.#lastRefreshOkAt = this.#clock.now();
    this.#storeOk();
  }

  /**
   * Reload one topic. `stamp` is its state stamp when read just before (by the full
   * refresh): the state loaded here is at least as new, so it is recorded with it; a load
   * without one (the change feed) records none, and the next full refresh reloads it.
   * Wakes listeners when what a consumer could see changed.
   */
  async refreshTopic(name: string, stamp?: string): Promise<void> {
    const seq = ++this.#seq;
    const [topic, allReleases, allPins] = await Promise.all([
      this.#store.getTopic(name),
      this.#store.listReleases(name),
      this.#store.listPins(name),
    ]);
    // Only what a decision about now reads (see the header): the history stays in the store.
    const releases = allReleases.filter((r) => r.withdrawnAt === undefined);
    const pins = allPins.filter((p) => p.unpinnedAt === undefined);
    if (topic === undefined) {
      if ((this.#applied.get(name) ?? 0) > seq) return;
      this.#applied.set(name, seq);
      if (this.#topics.delete(name)) this.#emit(name);
      return;
    }
    const referenced = new Set<number>();
    for (const r of releases) referenced.add(r.version);
    for (const p of pins) referenced.add(p.version);
    const records = referenced.size === 0 ? [] : await this.#store.getVersions(name, [...referenced]);
    if ((this.#applied.get(name) ?? 0) > seq) return;
    this.#applied.set(name, seq);

    const deleted = new Map<number, number>();
    for (const v of records) if (v.deletedAt !== undefined) deleted.set(v.version, v.deletedAt);
    // A referenced version missing from the store is treated as deleted (never handed out).
    const found = new Set(records.map((v) => v.version));
    for (const n of referenced) if (!found.has(n)) deleted.set(n, 0);
    const previous = this.#topics.get(name);
    // Settled: a first load (cold start, new topic), or this stamp was already recorded by
    // an earlier load; a stamp that moved is reloaded once more (see refresh()).
    const settled = stamp !== undefined && (previous === undefined || previous.stamp === stamp);
    const now = this.#clock.now();
    if (previous !== undefined && sameState(previous, topic, releases, pins, deleted)) {
      // Nothing a consumer could see changed: keep the state (no garbage, no wake-up).
      previous.stamp = stamp;
      previous.settled = settled;
      previous.loadedAt = now;
      return;
    }
    // Held for long: one copy of each repeated string (see intern()).
    const canonical = previous?.topic.name ?? topic.name;
    topic.name = canonical;
    for (const r of releases) {
      r.topic = canonical;
      r.scopeKey = intern(r.scopeKey);
      r.releasedBy = intern(r.releasedBy);
    }
    for (const p of pins) {
      p.topic = canonical;
      p.scopeKey = intern(p.scopeKey);
      p.pinnedBy = intern(p.pinnedBy);
    }
    for (const v of records) {
      v.topic = canonical;
      v.publisher = intern(v.publisher);
      v.contentType = intern(v.contentType);
      if (v.pointer.kind === 's3') for (const l of v.pointer.locations) l.region = intern(l.region);
    }
    // Keyed by the canonical name too: the consume service keeps this string for a poll's
    // lookups (a Map keeps the key it was first given).
    this.#topics.set(canonical, {
      topic,
      releases,
      pins,
      versions: new Map(records.map((v) => [v.version, v])),
      resolution: { releases, pins, deleted },
      stamp,
      settled,
      loadedAt: now,
    });
    this.#emit(name);
  }

  /** One change-feed read: refresh each changed topic once. */
  async pollChanges(): Promise<void> {
    const { changes, cursor } = await this.#store.changesSince(this.#cursor);
    const topics = new Set(changes.map((c) => c.topic));
    const limit = pLimit(this.#concurrency);
    await settleAll([...topics].map((t) => limit(() => this.refreshTopic(t))));
    // Advance only once the topics were reloaded: a failure re-reads the same changes.
    this.#cursor = cursor;
    this.#lastChangePollOkAt = this.#clock.now();
    this.#storeOk();
  }

  #emit(topic: string): void {
    for (const l of this.#listeners) {
      try {
        l(topic);
      } catch (err) {
        this.#onError(err, 'change listener');
      }
    }
    if (topicChanged.hasSubscribers) topicChanged.publish({ topic });
  }

  #scheduleRefresh(): void {
    if (this.#stopped) return;
    this.#refreshTimer = setTimeout(() => {
      this.#running = this.refresh()
        .catch((err: unknown) => this.#storeFailed(err, 'full refresh'))
        .finally(() => this.#scheduleRefresh());
    }, this.#refreshMs);
    this.#refreshTimer.unref();
  }

  #scheduleChangePoll(): void {
    if (this.#stopped) return;
    this.#changeTimer = setTimeout(() => this.#runChangePoll(), this.#changePollMs);
    this.#changeTimer.unref();
  }

  /**
   * Read the change feed now instead of at the next poll (a change hint from a publish
   * replica, ADR 0009). Coalesced: one read at a time; hints that arrive during a read
   * cause exactly one more read right after it. No-op before `start()` and after `stop()`.
   */
  pollNow(): void {
    if (this.#stopped || !this.#changePolling) return;
    if (this.#changeInFlight) {
      this.#pollAgain = true;
      return;
    }
    clearTimeout(this.#changeTimer);
    this.#runChangePoll();
  }

  /**
   * A change hint for `topic` ('' for a stream's "connected" message, ADR 0009): read the
   * change feed now (`pollNow`) and, at the same time, reload the hinted topic itself, so
   * its held polls are woken one store round trip sooner (the feed read, then the reload,
   * is two). The feed read stays the source of truth: a hint for the wrong topic, or none,
   * changes nothing, and of two loads of a topic the one started last wins (`#applied`).
   * Coalesced per topic: hints arriving during a topic's reload cause exactly one more.
   */
  hint(topic: string): void {
    if (this.#stopped || !this.#changePolling) return;
    if (topic !== '') this.#reloadHinted(topic);
    this.pollNow();
  }

  #reloadHinted(topic: string): void {
    const running = this.#hinted.get(topic);
    if (running !== undefined) {
      running.again = true;
      return;
    }
    const entry = { again: false, done: Promise.resolve() };
    this.#hinted.set(topic, entry);
    entry.done = (async () => {
      try {
        do {
          entry.again = false;
          await this.refreshTopic(topic);
        } while (entry.again && !this.#stopped);
      } catch (err) {
        // The change feed's read reloads it anyway.
        if (!this.#stopped) this.#storeFailed(err, `reload of hinted topic ${topic}`);
      } finally {
        this.#hinted.delete(topic);
      }
    })();
  }

  #runChangePoll(): void {
    this.#changeInFlight = true;
    this.#pollAgain = false;
    this.#changeRunning = this.pollChanges()
      .catch((err: unknown) => this.#storeFailed(err, 'change feed'))
      .finally(() => {
        this.#changeInFlight = false;
        if (this.#pollAgain && !this.#stopped) this.#runChangePoll();
        else this.#scheduleChangePoll();
      });
  }
}

/** Distinct values kept by `intern` at most (past it, strings are kept as read). */
const INTERNED_MAX = 10_000;
const interned = new Map<string, string>();

/**
 * One shared copy of a string that recurs across topics' states (publisher, content type,
 * scope key, who released, region): every row read from the store brings its own copy, and
 * at 10,000 topics × 5 versions these copies were ~10 MB of the heap (heap snapshot, see
 * bench/README.md). Few distinct values in practice; bounded all the same.
 */
function intern(s: string): string {
  const known = interned.get(s);
  if (known !== undefined) return known;
  if (interned.size < INTERNED_MAX) interned.set(s, s);
  return s;
}

/** Whether a reload holds exactly what the cached state holds (what a consumer could see). */
function sameState(
  prev: TopicState,
  topic: Topic,
  releases: readonly Release[],
  pins: readonly Pin[],
  deleted: ReadonlyMap<number, number>,
): boolean {
  if (prev.topic.revision !== topic.revision || !sameList(prev.topic.allowedApplications ?? [], topic.allowedApplications ?? [])) return false;
  const a = prev.releases;
  if (a.length !== releases.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as Release;
    const y = releases[i] as Release;
    if (x.version !== y.version || x.scopeKey !== y.scopeKey || x.releasedAt !== y.releasedAt) return false;
  }
  const b = prev.pins;
  if (b.length !== pins.length) return false;
  for (let i = 0; i < b.length; i++) {
    const x = b[i] as Pin;
    const y = pins[i] as Pin;
    if (x.pinId !== y.pinId || x.version !== y.version || x.scopeKey !== y.scopeKey || x.pinnedAt !== y.pinnedAt) {
      return false;
    }
  }
  const d = prev.resolution.deleted ?? new Map<number, number>();
  if (d.size !== deleted.size) return false;
  for (const [v, at] of deleted) if (d.get(v) !== at) return false;
  return true;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Await every load; reject with the first error once all settled (no load left running). */
async function settleAll(loads: readonly Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(loads);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}
