/**
 * Per-application limits of the consume service, so one misbehaving application (a
 * fleet polling in a tight loop, a bug that opens polls without end) cannot starve the
 * others:
 *
 * - **evaluations**: at most `concurrency` poll evaluations (cache lookups, consistency
 *   checks, inline reads) of one application run at once; more wait in that
 *   application's queue, and past `queue` waiting ones a poll is refused at once with
 *   RESOURCE_EXHAUSTED (HTTP 429) naming the application, so the others never wait
 *   behind it.
 * - **held long-polls**: at most `maxHeld` held at once per application (memory);
 *   past that a long-poll is refused with RESOURCE_EXHAUSTED.
 *
 * The queue is `p-limit` (one limiter per application, created on first use and dropped
 * when idle): a small, well-kept library whose `activeCount` / `pendingCount` give us
 * load shedding without a hand-written queue. A token bucket (rate) would punish a large
 * well-behaved fleet after a restart, when every instance re-arms at once; a
 * concurrency bound only limits what one application has in flight.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { Code, QuireError } from '@quire/core';

export interface AppLimitsOptions {
  /** Evaluations of one application at once (default 32). */
  concurrency?: number;
  /** Evaluations of one application waiting (default 2000); more are refused. */
  queue?: number;
  /** Long-polls of one application held at once (default 50000). */
  maxHeld?: number;
}

export const APP_LIMIT_DEFAULTS = { concurrency: 32, queue: 2000, maxHeld: 50_000 } as const;

/** Key of a consumer without an application attribute. */
const NO_APP = '\u0000none';

export class AppLimits {
  readonly concurrency: number;
  readonly queue: number;
  readonly maxHeld: number;
  readonly #limiters = new Map<string, LimitFunction>();
  readonly #held = new Map<string, number>();
  /** Polls refused so far, per application (for metrics / health). */
  readonly refused = new Map<string, number>();

  constructor(options: AppLimitsOptions = {}) {
    this.concurrency = options.concurrency ?? APP_LIMIT_DEFAULTS.concurrency;
    this.queue = options.queue ?? APP_LIMIT_DEFAULTS.queue;
    this.maxHeld = options.maxHeld ?? APP_LIMIT_DEFAULTS.maxHeld;
  }

  /**
   * Run `fn` within `application`'s evaluation limit; refuses when its queue is full.
   * `admitted`: the evaluation of a long-poll already counted by `hold()` (bounded by
   * `maxHeld`): it waits its turn like the others but is never refused, or a publish that
   * wakes more held polls than the queue holds would answer most of them with an error.
   */
  run<T>(application: string | undefined, fn: () => Promise<T>, admitted = false): Promise<T> {
    const key = application ?? NO_APP;
    let limit = this.#limiters.get(key);
    if (limit === undefined) {
      limit = pLimit(this.concurrency);
      this.#limiters.set(key, limit);
    }
    if (!admitted && limit.activeCount >= this.concurrency && limit.pendingCount >= this.queue) {
      return Promise.reject(this.#refuse(application, `more than ${this.queue} polls waiting`));
    }
    const l = limit;
    return l(fn).finally(() => {
      // Drop idle limiters: applications come and go.
      if (l.activeCount === 0 && l.pendingCount === 0 && this.#limiters.get(key) === l) this.#limiters.delete(key);
    });
  }

  /** Count one held long-poll of `application`; returns its release function (idempotent). Refuses past `maxHeld`. */
  hold(application: string | undefined): () => void {
    this.acquireHeld(application);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.releaseHeld(application);
    };
  }

  /** Count one held long-poll of `application` (no closure: the caller releases it exactly once). Refuses past `maxHeld`. */
  acquireHeld(application: string | undefined): void {
    const key = application ?? NO_APP;
    const n = this.#held.get(key) ?? 0;
    if (n >= this.maxHeld) throw this.#refuse(application, `more than ${this.maxHeld} long-polls held`);
    this.#held.set(key, n + 1);
  }

  /** Release one held long-poll counted by `acquireHeld`. */
  releaseHeld(application: string | undefined): void {
    const key = application ?? NO_APP;
    const m = (this.#held.get(key) ?? 1) - 1;
    if (m <= 0) this.#held.delete(key);
    else this.#held.set(key, m);
  }

  /** What one application has in flight now. */
  load(application: string | undefined): { active: number; pending: number; held: number } {
    const key = application ?? NO_APP;
    const l = this.#limiters.get(key);
    return { active: l?.activeCount ?? 0, pending: l?.pendingCount ?? 0, held: this.#held.get(key) ?? 0 };
  }

  #refuse(application: string | undefined, why: string): QuireError {
    const key = application ?? NO_APP;
    this.refused.set(key, (this.refused.get(key) ?? 0) + 1);
    const name = application === undefined ? 'consumers without identity.application' : `application ${JSON.stringify(application)}`;
    return new QuireError(Code.RESOURCE_EXHAUSTED, `identity.application: ${name} has ${why}; back off and poll again`, { field: 'identity.application' });
  }
}
