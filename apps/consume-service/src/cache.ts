/**
 * `TopicCache`: every topic's state in memory, so polls never read the metadata store.
 * Per topic: its settings, every release and pin (history included, so "at time T"
 * works on the same state), the descriptors of every version an active release or pin
 * points at (and which of them are deleted), and — filled by the consistency checker —
 * the bytes of small inline versions.
 *
 * Two refresh paths (see docs/adr/0004-consume-cache-refresh.md):
 * - a full refresh every `refreshMs` (default 5 s), paging through `listTopics`;
 * - a prompt refresh of only the changed topics, polling `store.changesSince(cursor)`
 *   every `changePollMs` (default 150 ms), and at once on a change hint (`pollNow`).
 * When a topic's state changes, the `onChange` listeners are called with its name (the
 * service wakes that topic's long-polls in one pass).
 */
import type { Clock, MetadataStore, Pin, Release, ResolutionState, Topic, VersionRecord } from '@quire/core';

export interface TopicState {
  topic: Topic;
  releases: readonly Release[];
  pins: readonly Pin[];
  /** Descriptors of the versions active releases / pins point at. */
  versions: ReadonlyMap<number, VersionRecord>;
  /** The input of `resolveVersion` / `candidateVersions`. */
  resolution: ResolutionState;
  /** Changes when anything a consumer could see changes. */
  signature: string;
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
  /** Topics loaded at once during a full refresh (default 8). */
  concurrency?: number;
  /** Called with unexpected refresh errors (the store being down included). */
  onError?: (err: unknown, what: string) => void;
}

const PAGE = 500;

export class TopicCache {
  readonly #store: MetadataStore;
  readonly #clock: Clock;
  readonly #refreshMs: number;
  readonly #changePollMs: number;
  readonly #staleAfterMs: number;
  readonly #concurrency: number;
  readonly #onError: (err: unknown, what: string) => void;
  readonly #topics = new Map<string, TopicState>();
  /** Per topic: sequence number of the newest load applied (an older, slower load never overwrites it). */
  readonly #applied = new Map<string, number>();
  readonly #listeners = new Set<(topic: string) => void>();
  #seq = 0;
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
  #stopped = false;

  constructor(options: TopicCacheOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#refreshMs = options.refreshMs ?? 5000;
    this.#changePollMs = options.changePollMs ?? 150;
    this.#staleAfterMs = options.staleAfterMs ?? 3 * this.#refreshMs;
    this.#concurrency = options.concurrency ?? 64;
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
    await Promise.allSettled([this.#running, this.#changeRunning]);
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

  /** Full refresh: every topic, paging through listTopics; drops topics that are gone. */
  async refresh(): Promise<void> {
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await this.#store.listTopics({ limit: PAGE, ...(cursor === undefined ? {} : { cursor }) });
      const names = page.items.map((t) => t.name);
      for (const n of names) seen.add(n);
      const byName = new Map(page.items.map((t) => [t.name, t]));
      await mapLimit(names, this.#concurrency, (name) => this.refreshTopic(name, byName.get(name)));
      cursor = page.next;
    } while (cursor !== undefined && !this.#stopped);
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

  /** Reload one topic (its settings may be passed in when just listed). Wakes listeners on a change. */
  async refreshTopic(name: string, known?: Topic): Promise<void> {
    const seq = ++this.#seq;
    const [topic, releases, pins] = await Promise.all([
      known === undefined ? this.#store.getTopic(name) : Promise.resolve(known),
      this.#store.listReleases(name),
      this.#store.listPins(name),
    ]);
    if (topic === undefined) {
      if ((this.#applied.get(name) ?? 0) > seq) return;
      this.#applied.set(name, seq);
      if (this.#topics.delete(name)) this.#emit(name);
      return;
    }
    const referenced = new Set<number>();
    for (const r of releases) if (r.withdrawnAt === undefined) referenced.add(r.version);
    for (const p of pins) if (p.unpinnedAt === undefined) referenced.add(p.version);
    const records = referenced.size === 0 ? [] : await this.#store.getVersions(name, [...referenced]);
    if ((this.#applied.get(name) ?? 0) > seq) return;
    this.#applied.set(name, seq);

    const versions = new Map(records.map((v) => [v.version, v]));
    const deleted = new Map<number, number>();
    for (const v of records) if (v.deletedAt !== undefined) deleted.set(v.version, v.deletedAt);
    // A referenced version missing from the store is treated as deleted (never handed out).
    for (const n of referenced) if (!versions.has(n)) deleted.set(n, 0);
    const signature = signatureOf(topic, releases, pins, deleted);
    const previous = this.#topics.get(name);
    this.#topics.set(name, {
      topic,
      releases,
      pins,
      versions,
      resolution: { releases, pins, deleted },
      signature,
      loadedAt: this.#clock.now(),
    });
    if (previous === undefined || previous.signature !== signature) this.#emit(name);
  }

  /** One change-feed read: refresh each changed topic once. */
  async pollChanges(): Promise<void> {
    const { changes, cursor } = await this.#store.changesSince(this.#cursor);
    const topics = new Set(changes.map((c) => c.topic));
    await mapLimit([...topics], this.#concurrency, (t) => this.refreshTopic(t));
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
   * replica, ADR 0008). Coalesced: one read at a time; hints that arrive during a read
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

function signatureOf(topic: Topic, releases: readonly Release[], pins: readonly Pin[], deleted: ReadonlyMap<number, number>): string {
  const r = releases.map((x) => `${x.version}:${x.scopeKey}:${x.releasedAt}:${x.withdrawnAt ?? ''}`).sort();
  const p = pins.map((x) => `${x.pinId}:${x.version}:${x.scopeKey}:${x.pinnedAt}:${x.unpinnedAt ?? ''}`).sort();
  const d = [...deleted].map(([v, at]) => `${v}:${at}`).sort();
  return JSON.stringify([topic.revision, (topic.allowedApplications ?? []).join(','), r, p, d]);
}

/** Run `fn` over `items` with at most `limit` at once; rejects with the first error after all settle. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}
