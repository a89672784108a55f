/**
 * Held long-polls, indexed by topic. Each waiter sits in one Set per topic it watches;
 * `wake(topic)` notifies every waiter of that topic in one pass over its Set (no
 * per-request emitter listener: removing thousands of `once` listeners one by one is
 * quadratic, see BASELINES.md). A waiter stays registered while it re-evaluates; it is
 * removed from its Sets only when it finishes (O(1) per topic).
 */

export interface Waiter {
  /** Called when one of the waiter's topics changed, or with `drain` when the service closes. */
  notify(reason: 'change' | 'drain'): void;
}

export class WaiterRegistry {
  readonly #byTopic = new Map<string, Set<Waiter>>();
  #count = 0;

  /** Register `waiter` on `topics`; returns the function that removes it (idempotent). */
  add(topics: Iterable<string>, waiter: Waiter): () => void {
    const joined: Set<Waiter>[] = [];
    const names: string[] = [];
    for (const topic of new Set(topics)) {
      let set = this.#byTopic.get(topic);
      if (set === undefined) {
        set = new Set();
        this.#byTopic.set(topic, set);
      }
      set.add(waiter);
      joined.push(set);
      names.push(topic);
    }
    this.#count++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.#count--;
      for (let i = 0; i < joined.length; i++) {
        const set = joined[i] as Set<Waiter>;
        set.delete(waiter);
        const name = names[i] as string;
        if (set.size === 0 && this.#byTopic.get(name) === set) this.#byTopic.delete(name);
      }
    };
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
    const all = new Set<Waiter>();
    for (const set of this.#byTopic.values()) for (const w of set) all.add(w);
    for (const w of all) w.notify('drain');
    return all.size;
  }

  /** Waiters currently held. */
  get size(): number {
    return this.#count;
  }

  /** Waiters watching `topic`. */
  watching(topic: string): number {
    return this.#byTopic.get(topic)?.size ?? 0;
  }
}
