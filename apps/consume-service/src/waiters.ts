/**
 * Held long-polls, indexed by topic. Each waiter sits in one Set per topic it watches;
 * `wake(topic)` notifies every waiter of that topic in one pass over its Set (no
 * per-request emitter listener: removing thousands of `once` listeners one by one is
 * quadratic, see BASELINES.md). A waiter stays registered while it re-evaluates; it is
 * removed from its Sets only when it finishes (O(1) per topic).
 *
 * `Deadlines` ends the waits: one timer for every held poll (deadlines bucketed by
 * `resolutionMs`, a wait ends at most that much late, never early) instead of one
 * `setTimeout` per poll.
 */

export interface Waiter {
  /** The topics it watches (each once). */
  readonly topics: readonly string[];
  /** Called when one of the waiter's topics changed, or with `drain` when the service closes. */
  notify(reason: 'change' | 'drain'): void;
}

export class WaiterRegistry {
  readonly #byTopic = new Map<string, Set<Waiter>>();
  readonly #all = new Set<Waiter>();

  /** Register `waiter` on its topics. */
  add(waiter: Waiter): void {
    if (this.#all.has(waiter)) return;
    this.#all.add(waiter);
    for (const topic of waiter.topics) {
      let set = this.#byTopic.get(topic);
      if (set === undefined) {
        set = new Set();
        this.#byTopic.set(topic, set);
      }
      set.add(waiter);
    }
  }

  /** Remove `waiter` (idempotent). */
  remove(waiter: Waiter): void {
    if (!this.#all.delete(waiter)) return;
    for (const topic of waiter.topics) {
      const set = this.#byTopic.get(topic);
      if (set === undefined) continue;
      set.delete(waiter);
      if (set.size === 0) this.#byTopic.delete(topic);
    }
  }

  /** Notify every waiter of `topic` (one pass); returns how many were notified. */
  wake(topic: string): number {
    const set = this.#byTopic.get(topic);
    if (set === undefined) return 0;
    // A snapshot: a waiter that finishes (and removes itself) during the pass is not skipped
    // or revisited.
    const waiters = [...set];
    for (const w of waiters) w.notify('change');
    return waiters.length;
  }

  /** Notify every waiter with `drain` (graceful shutdown). */
  drainAll(): number {
    const all = [...this.#all];
    for (const w of all) w.notify('drain');
    return all.length;
  }

  /** Waiters currently held. */
  get size(): number {
    return this.#all.size;
  }

  /** Waiters watching `topic`. */
  watching(topic: string): number {
    return this.#byTopic.get(topic)?.size ?? 0;
  }
}

export interface Expiring {
  /** Called once, at or a little after its deadline (unless removed first). */
  expire(): void;
}

/**
 * Deadlines of many held polls on one timer: buckets of `resolutionMs`, visited in order by
 * one interval that runs only while a deadline is pending.
 */
export class Deadlines<T extends Expiring> {
  readonly #resolutionMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<number, Set<T>>();
  readonly #slotOf = new Map<T, number>();
  /** Next bucket to visit. */
  #next = -1;
  #timer: NodeJS.Timeout | undefined;

  constructor(resolutionMs = 20, now: () => number = Date.now) {
    this.#resolutionMs = resolutionMs;
    this.#now = now;
  }

  /** Expire `item` at `at` (ms, on `now`'s clock); replaces an earlier deadline of it. */
  add(item: T, at: number): void {
    this.remove(item);
    // The first bucket whose start is at or after the deadline: never early.
    const slot = Math.ceil(at / this.#resolutionMs);
    let bucket = this.#buckets.get(slot);
    if (bucket === undefined) {
      bucket = new Set();
      this.#buckets.set(slot, bucket);
    }
    bucket.add(item);
    this.#slotOf.set(item, slot);
    if (this.#next < 0 || slot < this.#next) this.#next = Math.min(slot, Math.floor(this.#now() / this.#resolutionMs));
    this.#timer ??= setInterval(() => this.tick(), this.#resolutionMs);
  }

  remove(item: T): void {
    const slot = this.#slotOf.get(item);
    if (slot === undefined) return;
    this.#slotOf.delete(item);
    const bucket = this.#buckets.get(slot);
    bucket?.delete(item);
    if (bucket?.size === 0) this.#buckets.delete(slot);
    if (this.#slotOf.size === 0) this.#stop();
  }

  /** Pending deadlines. */
  get size(): number {
    return this.#slotOf.size;
  }

  /** Expire everything due now (the interval calls it). */
  tick(): void {
    const upTo = Math.floor(this.#now() / this.#resolutionMs);
    while (this.#next <= upTo && this.#slotOf.size > 0) {
      const slot = this.#next++;
      const bucket = this.#buckets.get(slot);
      if (bucket === undefined) continue;
      this.#buckets.delete(slot);
      for (const item of bucket) {
        this.#slotOf.delete(item);
        item.expire();
      }
    }
    if (this.#slotOf.size === 0) this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#next = -1;
  }
}
