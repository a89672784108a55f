/**
 * Shared answers: what the consume service hands out for one (topic state, version, via,
 * region) is the same for every consumer it applies to, so it is computed once (the
 * consistency check and the inline bytes) and the same frozen object goes to every poll
 * that asks: a publish waking 1,000 held polls of a topic builds one answer, not 1,000,
 * and the transports can encode a shared answer once (they cache encodings by object).
 *
 * Entries live as long as their state object (a `WeakMap` keyed by it: the cache replaces
 * a topic's state when anything about it changes, which drops its answers). A computation
 * in flight is shared by everyone asking meanwhile. A miss ("not whole", store briefly
 * down) is kept for `missMs` only, so it is asked again after the consistency checker's
 * re-check delay; `forgetMisses(state)` drops them at once (a re-check passed).
 */

export type Settled<T> = { value: T } | { miss: true; at: number };

interface Entry<T> {
  promise: Promise<T | undefined>;
  settled?: Settled<T>;
}

export interface SharedAnswersOptions<T> {
  /** How long a miss (`undefined`) is remembered (ms). */
  missMs: number;
  now: () => number;
  /** Keep a value past its computation? (default yes). Not kept: shared only while in flight. */
  retain?: (value: T) => boolean;
}

export class SharedAnswers<S extends object, T> {
  readonly #byState = new WeakMap<S, Map<string, Entry<T>>>();
  readonly #missMs: number;
  readonly #now: () => number;
  readonly #retain: (value: T) => boolean;

  constructor(options: SharedAnswersOptions<T>) {
    this.#missMs = options.missMs;
    this.#now = options.now;
    this.#retain = options.retain ?? (() => true);
  }

  /**
   * The settled answer for (state, key): `{ value }`, `{ miss }` (no answer), or the
   * promise of the computation in flight; `undefined` when nothing is known (nothing is
   * started: see `get`).
   */
  peek(state: S, key: string): Settled<T> | Promise<T | undefined> | undefined {
    const e = this.#byState.get(state)?.get(key);
    if (e === undefined) return undefined;
    const s = e.settled;
    if (s === undefined) return e.promise;
    if ('value' in s || this.#now() - s.at < this.#missMs) return s;
    return undefined;
  }

  /** Like `peek`, but starts `compute` (once, shared) when nothing is known. */
  get(state: S, key: string, compute: () => Promise<T | undefined>): Settled<T> | Promise<T | undefined> {
    const known = this.peek(state, key);
    if (known !== undefined) return known;
    let entries = this.#byState.get(state);
    if (entries === undefined) {
      entries = new Map();
      this.#byState.set(state, entries);
    }
    const map = entries;
    const entry: Entry<T> = { promise: Promise.resolve(undefined) };
    const settle = (value: T | undefined): T | undefined => {
      if (value === undefined) entry.settled = { miss: true, at: this.#now() };
      else if (this.#retain(value)) entry.settled = { value };
      else if (map.get(key) === entry) map.delete(key);
      return value;
    };
    entry.promise = compute().then(settle, () => settle(undefined));
    map.set(key, entry);
    return entry.promise;
  }

  /** Forget the misses of `state` (their cause may be gone). */
  forgetMisses(state: S): void {
    const entries = this.#byState.get(state);
    if (entries === undefined) return;
    for (const [k, e] of entries) if (e.settled !== undefined && !('value' in e.settled)) entries.delete(k);
  }
}
