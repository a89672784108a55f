/**
 * `ConsumeService`: the consume side's one service layer, called by both transports.
 *
 * - `poll`: batched (long-)poll answered from `TopicCache` with the same
 *   `resolveVersion` / `candidateVersions` the client's fallback reader uses; only
 *   topics whose applicable version differs from the consumer's `knownVersion`; every
 *   version passes the consistency check first. Held polls wait in a `WaiterRegistry`
 *   and re-evaluate when one of their topics changes.
 * - the hot paths: a poll with nothing new is answered synchronously (no promise per
 *   subscription) with one shared frozen answer; what is handed out for a (topic state,
 *   version, via, region) is computed once and shared by every poll it goes to
 *   (`answers.ts`), so a publish waking 1,000 held polls checks and builds one answer and
 *   the transports encode it once; a held poll is one small object (no timer, closure or
 *   AbortController of its own: `Deadlines`, `PollCancel`).
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
  currentResolution,
  latestPerScope,
  resolveVersion,
  validatePageLimit,
  validateTopicName,
} from '@quire/core';
import { Readable } from 'node:stream';
import type { BlobStore, Clock, ConsumerIdentity, FleetReport, MetadataStore, Release, ResolutionState, Scope, VersionRecord } from '@quire/core';
import { SharedAnswers, type Settled } from './answers.ts';
import type { TopicCache, TopicState } from './cache.ts';
import type { ConsistencyChecker } from './consistency.ts';
import { AppLimits, type AppLimitsOptions } from './limiter.ts';
import { Deadlines, WaiterRegistry, type Expiring, type Waiter } from './waiters.ts';

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

/**
 * A poll's answer. Answers common to many polls (nothing new; one shared update) are one
 * frozen object handed to all of them: `isSharedAnswer` tells the transports they may keep
 * its encoding.
 */
export interface PollResult {
  readonly updates: readonly TopicUpdate[];
  readonly errors: readonly TopicStatus[];
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

/** Shared answers keep inline bytes up to this size (the consistency checker's own cache size). */
const RETAIN_INLINE_BYTES = 64 * 1024;

const EMPTY_ERRORS: readonly TopicStatus[] = Object.freeze([]);
/** Parked held polls re-evaluated per event-loop turn when their shared computation settles (`#unparkSlice`), at most. */
export const UNPARK_SLICE = 500;
/**
 * The first slice is smaller, and each next one twice the size up to `UNPARK_SLICE`
 * (50, 100, 200, 400, 500, 500…): the first answers leave after 50 evaluations and writes
 * instead of 500, so the consumers start on theirs (on the other cores) while the
 * service writes the rest. At 1,000 held polls, 500 first cost ~10–20 ms before any
 * answer left the process.
 */
export const UNPARK_FIRST_SLICE = 50;

/** Size of the slice after one of `size` (see `UNPARK_FIRST_SLICE`). */
export function nextUnparkSlice(size: number): number {
  return Math.min(UNPARK_SLICE, size * 2);
}

/** The answer to every poll with nothing new and no error (one object: its encoding is kept). */
const NO_CHANGE: PollResult = Object.freeze({ updates: Object.freeze([]), errors: EMPTY_ERRORS, nextPollMs: 0, stale: false });
const NO_CHANGE_STALE: PollResult = Object.freeze({ updates: Object.freeze([]), errors: EMPTY_ERRORS, nextPollMs: 0, stale: true });

/** True for an answer object shared by many polls (frozen): a transport may keep its encoding by identity. */
export function isSharedAnswer(r: PollResult): boolean {
  return Object.isFrozen(r);
}

/** Not known yet (a computation is needed). */
const PENDING = Symbol('pending');

/**
 * What ends a held poll early: an `AbortSignal`, or a `PollCancel` (lighter: no event
 * target, no DOMException). The listener is an object with `handleEvent` (the held poll).
 */
export interface Cancellation {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: { handleEvent(): void }): void;
  removeEventListener(type: 'abort', listener: { handleEvent(): void }): void;
}

/** The transports' cancellation of a held poll (client gone): one listener, no allocation when it fires. */
export class PollCancel implements Cancellation {
  aborted = false;
  #listener: { handleEvent(): void } | undefined;

  addEventListener(_type: 'abort', listener: { handleEvent(): void }): void {
    this.#listener = listener;
  }

  removeEventListener(_type: 'abort', listener: { handleEvent(): void }): void {
    if (this.#listener === listener) this.#listener = undefined;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const l = this.#listener;
    this.#listener = undefined;
    l?.handleEvent();
  }
}

/**
 * Receives a poll's answer, or its error (`result` undefined), once, with the `ctx` given to
 * `pollInto`: a transport needs no closure or promise per poll.
 */
export type PollDone<C> = (ctx: C, result: PollResult | undefined, err?: unknown) => void;

interface Deferred {
  resolve(r: PollResult): void;
  reject(err: unknown): void;
}

/** `poll`'s `PollDone`: settles its promise. */
function settleDeferred(d: Deferred, result: PollResult | undefined, err?: unknown): void {
  if (result === undefined) d.reject(err);
  else d.resolve(result);
}

interface HeldHooks {
  change(h: HeldPoll): void;
  drain(h: HeldPoll): void;
  /** The wait ended (deadline or cancellation) with nothing new. */
  end(h: HeldPoll): void;
}

/**
 * One held long-poll: registered on its topics (`Waiter`), on the shared deadline timer
 * (`Expiring`) and as its cancellation's listener (`handleEvent`), with no closure of its own.
 */
class HeldPoll implements Waiter, Expiring {
  done = false;
  evaluating = false;
  again = false;
  lastErrors: readonly TopicStatus[] = EMPTY_ERRORS;

  constructor(
    readonly hooks: HeldHooks,
    readonly req: PollRequest,
    readonly signal: Cancellation | undefined,
    readonly answer: PollDone<unknown>,
    readonly ctx: unknown,
  ) {}

  get topics(): string[] {
    return this.req.subs.map((s) => s.topic);
  }

  notify(reason: 'change' | 'drain'): void {
    if (reason === 'drain') this.hooks.drain(this);
    else this.hooks.change(this);
  }

  expire(): void {
    this.hooks.end(this);
  }

  handleEvent(): void {
    this.hooks.end(this);
  }
}

/** Last fleet report of one (instance, topic), updated in place. */
interface FleetEntry {
  identity: ConsumerIdentity;
  version: number;
  failedVersion: number;
  error: string;
  reportedAt: number;
}

function fleetReport(instance: string, topic: string, e: FleetEntry): FleetReport {
  const report: FleetReport = { topic, instance, identity: e.identity, version: e.version, reportedAt: e.reportedAt };
  if (e.failedVersion > 0) report.failedVersion = e.failedVersion;
  if (e.error !== '') report.error = e.error;
  return report;
}

/** Key of a shared answer within its state: inline answers do not depend on the region (S3 ones list its locations first). */
function answerKey(record: VersionRecord | undefined, version: number, via: string, region: string | undefined): string {
  return record?.pointer.kind === 's3' && region !== undefined ? `${version} ${via} ${region}` : `${version} ${via}`;
}

function subscriptionError(topic: string, state: TopicState | undefined, identity: ConsumerIdentity): TopicStatus {
  if (state === undefined) return { topic, code: Code.NOT_FOUND, message: `topic ${topic} not found` };
  return { topic, code: Code.PERMISSION_DENIED, message: `application ${JSON.stringify(identity.application ?? '')} may not subscribe to ${topic}` };
}

export class ConsumeService {
  readonly #cache: TopicCache;
  readonly #checker: ConsistencyChecker;
  readonly #store: MetadataStore;
  readonly #blobs: BlobStore;
  readonly #clock: Clock;
  readonly #onError: (err: unknown, what: string) => void;
  readonly #waiters = new WaiterRegistry();
  readonly #deadlines = new Deadlines<HeldPoll>();
  /** Held polls waiting for the same shared computation. */
  readonly #parked = new Map<Promise<unknown>, HeldPoll[]>();
  readonly #answers: SharedAnswers<TopicState, TopicUpdate>;
  readonly #current = new WeakMap<TopicState, ResolutionState>();
  readonly #single = new WeakMap<TopicUpdate, PollResult>();
  readonly #singleStale = new WeakMap<TopicUpdate, PollResult>();
  /** Last report per instance, per topic. */
  #fleet = new Map<string, Map<string, FleetEntry>>();
  readonly #unsubscribe: () => void;
  readonly #fleetTimer: NodeJS.Timeout;
  readonly #recheckTimer: NodeJS.Timeout;
  readonly #limits: AppLimits;
  readonly #drainSpreadMs: number;
  #rechecking = false;
  #flushing: Promise<void> | undefined;
  #closing = false;
  readonly #drainListeners = new Set<() => void>();

  constructor(options: ConsumeServiceOptions) {
    this.#cache = options.cache;
    this.#checker = options.checker;
    this.#store = options.store;
    this.#blobs = options.blobs;
    this.#clock = options.clock;
    this.#onError = options.onError ?? (() => {});
    this.#answers = new SharedAnswers<TopicState, TopicUpdate>({
      // A version not whole is asked again after the checker's re-check delay.
      missMs: Math.min(1000, this.#checker.recheckMs),
      now: () => Date.now(),
      // Large inline bytes are shared while being read, not kept (the checker keeps small ones).
      retain: (u) => u.inlineData === undefined || u.inlineData.byteLength <= RETAIN_INLINE_BYTES,
    });
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
      for (const topic of passed) {
        const state = this.#cache.get(topic);
        if (state !== undefined) this.#answers.forgetMisses(state);
        this.#waiters.wake(topic);
      }
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

  /**
   * Answer a poll. With nothing new (the common case) it is answered synchronously from
   * the cache: one `resolveVersion` per subscription on the topic's current resolution, no
   * promise per subscription, the same frozen answer object every time. Subscriptions with
   * something new take the version's shared answer (`SharedAnswers`), computed once per
   * (state, version, via, region) within the application's evaluation limit.
   */
  poll(input: PollInput, signal?: Cancellation): Promise<PollResult> {
    return new Promise<PollResult>((resolve, reject) => this.pollInto(input, signal, settleDeferred, { resolve, reject }));
  }

  /**
   * `poll` with a callback: `done(ctx, result)` or `done(ctx, undefined, err)`, once, maybe
   * synchronously (an answer known now). A held poll then keeps no promise, closure or
   * suspended async function of its own: 10,000 held polls, 10,000 fewer of each.
   */
  pollInto<C>(input: PollInput, signal: Cancellation | undefined, done: PollDone<C>, ctx: C): void {
    let req: PollRequest;
    try {
      req = parsePoll(input, this.#knownTopic);
    } catch (err) {
      done(ctx, undefined, err);
      return;
    }
    this.#recordFleet(req);
    const app = req.identity.application;
    if (this.#closing) {
      Promise.resolve(this.#evaluateOrQueue(req)).then(
        (r) => done(ctx, { ...r, nextPollMs: this.#rearmDelay() }),
        (err: unknown) => done(ctx, undefined, err),
      );
      return;
    }
    if (req.waitMs === 0) {
      const now = this.#evaluateOrQueue(req);
      if (now instanceof Promise)
        now.then(
          (r) => done(ctx, r),
          (err: unknown) => done(ctx, undefined, err),
        );
      else done(ctx, now);
      return;
    }
    try {
      this.#limits.acquireHeld(app);
    } catch (err) {
      done(ctx, undefined, err);
      return;
    }
    this.#hold(req, signal, done as PollDone<unknown>, ctx);
  }

  /** The cache's own copy of a topic's name (its Map key), or undefined for a topic not cached. */
  readonly #knownTopic = (topic: string): string | undefined => this.#cache.get(topic)?.topic.name;

  /** The answer now when no computation is needed, else the full evaluation within the application's limit. */
  #evaluateOrQueue(req: PollRequest): PollResult | Promise<PollResult> {
    const now = this.#evaluateNow(req, false);
    if (now !== PENDING) return now as PollResult;
    return this.#limits.run(req.identity.application, () => this.#evaluateAsync(req));
  }

  /**
   * Hold until something changes for this consumer, the wait ends, the client goes away
   * or the service drains. The first evaluation is synchronous when it can be (an answer
   * now is never registered); otherwise the poll is registered before it waits for a
   * computation, so a change landing meanwhile triggers one more evaluation.
   */
  #hold(req: PollRequest, signal: Cancellation | undefined, answer: PollDone<unknown>, ctx: unknown): void {
    const h = new HeldPoll(this.#heldHooks, req, signal, answer, ctx);
    if (signal?.aborted) {
      this.#finishHeld(h, this.#emptyFor(h));
      return;
    }
    const now = this.#evaluateNow(req, true);
    if (!(now instanceof Promise)) {
      const result = now as PollResult;
      h.lastErrors = result.errors;
      if (result.updates.length > 0) {
        this.#finishHeld(h, result);
        return;
      }
    }
    this.#waiters.add(h);
    this.#deadlines.add(h, Date.now() + req.waitMs);
    signal?.addEventListener('abort', h);
    if (now instanceof Promise) this.#park(h, now);
  }

  /** A change on one of the held poll's topics: evaluate again (at most one evaluation at a time). */
  #runHeld(h: HeldPoll): void {
    if (h.done) return;
    if (h.evaluating) {
      h.again = true;
      return;
    }
    const now = this.#evaluateNow(h.req, true);
    if (now instanceof Promise) this.#park(h, now);
    else this.#settleHeld(h, now as PollResult);
  }

  /**
   * Wait for a shared computation. The polls waiting for the same one (a publish waking
   * every held poll of a topic) are kept in one list and re-evaluated in one pass when it
   * settles: one promise reaction for all of them, not one chain per poll.
   */
  #park(h: HeldPoll, on: Promise<unknown>): void {
    h.evaluating = true;
    let list = this.#parked.get(on);
    if (list === undefined) {
      list = [];
      this.#parked.set(on, list);
      // Shared computations never reject (SharedAnswers settles failures as misses).
      void on.then(() => this.#unpark(on));
    }
    list.push(h);
  }

  #unpark(on: Promise<unknown>): void {
    const list = this.#parked.get(on) ?? [];
    this.#parked.delete(on);
    this.#unparkSlice(list, 0, UNPARK_FIRST_SLICE);
  }

  /**
   * Re-evaluate parked polls `from` on, `size` of them (growing slices, see
   * `UNPARK_FIRST_SLICE`) with a `setImmediate` between slices: the answers of a slice are
   * written (the transports' continuations and socket writes run) before the next slice is
   * evaluated, so after a publish waking 10,000 held polls the first answers go out at once
   * instead of after the whole pass, and clients read them while the rest is evaluated. A
   * poll that ends meanwhile (client gone, drain) is skipped; one whose topics change
   * meanwhile is evaluated on the newest state.
   */
  #unparkSlice(list: HeldPoll[], from: number, size: number): void {
    const end = Math.min(list.length, from + size);
    if (end < list.length) setImmediate(() => this.#unparkSlice(list, end, nextUnparkSlice(size)));
    for (let i = from; i < end; i++) {
      const h = list[i] as HeldPoll;
      h.evaluating = false;
      h.again = false;
      if (h.done) continue;
      const now = this.#evaluateNow(h.req, false);
      if (now === PENDING) this.#evaluateHeldAsync(h);
      else this.#settleHeld(h, now as PollResult);
    }
  }

  /** The full (asynchronous) evaluation, admitted by `acquireHeld`: never refused by the queue. */
  #evaluateHeldAsync(h: HeldPoll): void {
    h.evaluating = true;
    this.#limits.run(h.req.identity.application, () => this.#evaluateAsync(h.req), true).then(
      (result) => {
        h.evaluating = false;
        this.#settleHeld(h, result);
      },
      (err: unknown) => this.#finishHeld(h, undefined, err),
    );
  }

  #settleHeld(h: HeldPoll, result: PollResult): void {
    if (h.done) return;
    // Per-topic errors (unknown topic, not allowed) do not end a held poll: the topic may
    // appear while we wait, and a consumer with a typo must not spin. They are answered
    // with the updates, or when the wait ends.
    h.lastErrors = result.errors;
    if (result.updates.length > 0 || this.#closing) this.#finishHeld(h, result);
    else if (h.again) {
      h.again = false;
      this.#runHeld(h);
    }
  }

  #finishHeld(h: HeldPoll, result: PollResult | undefined, err?: unknown): void {
    if (h.done) return;
    h.done = true;
    this.#waiters.remove(h);
    this.#deadlines.remove(h);
    h.signal?.removeEventListener('abort', h);
    this.#limits.releaseHeld(h.req.identity.application);
    // The transport's callback runs here, inside a pass over many held polls (a slice, the
    // deadline timer): a throw must not end the pass for the others.
    try {
      h.answer(h.ctx, result, err);
    } catch (e) {
      this.#onError(e, 'answering a held poll');
    }
  }

  /** The answer of a wait that ended with nothing new: the errors seen last, if any. */
  #emptyFor(h: HeldPoll): PollResult {
    const stale = this.#cache.stale;
    if (h.lastErrors.length === 0) return stale ? NO_CHANGE_STALE : NO_CHANGE;
    return { updates: [], errors: h.lastErrors, nextPollMs: 0, stale };
  }

  readonly #heldHooks: HeldHooks = {
    change: (h) => this.#runHeld(h),
    drain: (h) => this.#finishHeld(h, { ...this.#emptyFor(h), nextPollMs: this.#rearmDelay() }),
    end: (h) => this.#finishHeld(h, this.#emptyFor(h)),
  };

  /**
   * One subscription's state and the version that applies to it, when that differs from
   * what the consumer holds; an error for an unknown or forbidden topic; undefined when
   * nothing is new. The same first step for the synchronous and the full evaluation.
   */
  #wanted(sub: Sub, identity: ConsumerIdentity): { state: TopicState; resolution: NonNullable<ReturnType<typeof resolveVersion>> } | { error: TopicStatus } | undefined {
    const state = this.#cache.get(sub.topic);
    if (state === undefined || !applicationMayConsume(state.topic.allowedApplications, identity.application)) {
      return { error: subscriptionError(sub.topic, state, identity) };
    }
    const resolution = resolveVersion(this.#currentOf(state), identity);
    if (resolution === undefined || resolution.version === sub.knownVersion) return undefined;
    return { state, resolution };
  }

  /**
   * One synchronous pass over the subscriptions: errors, and for each subscription with
   * something new its shared answer. Returns the result when every answer needed is known.
   * Otherwise: with `start`, the promise of the computations it started or joined (wait
   * for it, then evaluate again); without, PENDING (nothing started).
   */
  #evaluateNow(req: PollRequest, start: boolean): PollResult | Promise<unknown> | typeof PENDING {
    const { identity, subs } = req;
    let updates: TopicUpdate[] | undefined;
    let errors: TopicStatus[] | undefined;
    let waitFor: Promise<unknown>[] | undefined;
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i] as Sub;
      const wanted = this.#wanted(sub, identity);
      if (wanted === undefined) continue;
      if ('error' in wanted) {
        (errors ??= []).push(wanted.error);
        continue;
      }
      const { state, resolution } = wanted;
      const a = this.#answerNow(state, identity, resolution.version, resolution.via, sub.knownVersion, start);
      if (a === undefined) continue;
      if (a === PENDING) return PENDING;
      if (a instanceof Promise) {
        // In flight (started by another poll): without `start` this poll does not wait here.
        if (!start) return PENDING;
        (waitFor ??= []).push(a);
      } else (updates ??= []).push(a);
    }
    if (waitFor !== undefined) return waitFor.length === 1 ? (waitFor[0] as Promise<unknown>) : Promise.all(waitFor);
    return this.#result(updates, errors);
  }

  /** The full evaluation: every subscription's answer, waiting for the computations it needs. */
  async #evaluateAsync(req: PollRequest): Promise<PollResult> {
    const { identity, subs } = req;
    let errors: TopicStatus[] | undefined;
    const found: Array<TopicUpdate | Promise<TopicUpdate | undefined>> = [];
    for (const sub of subs) {
      const wanted = this.#wanted(sub, identity);
      if (wanted === undefined) continue;
      if ('error' in wanted) {
        (errors ??= []).push(wanted.error);
        continue;
      }
      const { state, resolution } = wanted;
      const a = this.#answerNow(state, identity, resolution.version, resolution.via, sub.knownVersion, true);
      if (a instanceof Promise) found.push(this.#answerAsync(state, identity, resolution.version, resolution.via, sub.knownVersion));
      else if (a !== undefined && a !== PENDING) found.push(a);
    }
    const updates = (await Promise.all(found)).filter((u): u is TopicUpdate => u !== undefined);
    return this.#result(updates.length === 0 ? undefined : updates, errors);
  }

  /**
   * The update for one subscription whose applicable version differs from what it holds:
   * the shared answer of that version when it is whole; when it is not, a consumer that has
   * data keeps it (no update) and one with nothing walks back through the candidates to the
   * newest whole version. `undefined`: no update; PENDING: not known yet (nothing started,
   * `start` false); a promise: a computation to wait for (`start`).
   */
  #answerNow(
    state: TopicState,
    identity: ConsumerIdentity,
    version: number,
    via: 'release' | 'pin',
    known: number,
    start: boolean,
  ): TopicUpdate | undefined | Promise<unknown> | typeof PENDING {
    let a = this.#shared(state, version, via, identity.region, start);
    if (a === undefined) return PENDING;
    if (a instanceof Promise) return a;
    if ('value' in a) return a.value;
    if (known > 0) return undefined;
    for (const n of candidateVersions(state.resolution, identity)) {
      if (n === version) continue;
      a = this.#shared(state, n, via, identity.region, start);
      if (a === undefined) return PENDING;
      if (a instanceof Promise) return a;
      if ('value' in a) return a.value;
    }
    return undefined;
  }

  async #answerAsync(state: TopicState, identity: ConsumerIdentity, version: number, via: 'release' | 'pin', known: number): Promise<TopicUpdate | undefined> {
    const first = await this.#sharedValue(state, version, via, identity.region);
    if (first !== undefined || known > 0) return first;
    for (const n of candidateVersions(state.resolution, identity)) {
      if (n === version) continue;
      const u = await this.#sharedValue(state, n, via, identity.region);
      if (u !== undefined) return u;
    }
    return undefined;
  }

  /** The shared answer of (state, version, via, region): settled, in flight, or (without `start`) unknown. */
  #shared(state: TopicState, version: number, via: 'release' | 'pin', region: string | undefined, start: boolean): Settled<TopicUpdate> | Promise<TopicUpdate | undefined> | undefined {
    const key = answerKey(state.versions.get(version), version, via, region);
    return start ? this.#answers.get(state, key, () => this.#computeAnswer(state, version, via, region)) : this.#answers.peek(state, key);
  }

  async #sharedValue(state: TopicState, version: number, via: 'release' | 'pin', region: string | undefined): Promise<TopicUpdate | undefined> {
    const a = this.#shared(state, version, via, region, true);
    if (a === undefined) return undefined;
    if (a instanceof Promise) return a;
    return 'value' in a ? a.value : undefined;
  }

  /** The answer handing out `version` when it is whole (checked), with its inline bytes. */
  async #computeAnswer(state: TopicState, version: number, via: 'release' | 'pin', region: string | undefined): Promise<TopicUpdate | undefined> {
    const record = state.versions.get(version);
    if (record === undefined || !(await this.#checker.check(record, region)).ok) return undefined;
    // Inline bytes ride in the answer while it stays well under the gRPC message limit;
    // past the budget the descriptor goes alone and the SDK reads the bytes with ReadInline
    // (one huge answer would fail every poll of this consumer).
    let inlineData: Uint8Array | undefined;
    if (record.pointer.kind === 'inline' && record.size <= POLL_INLINE_BUDGET_BYTES) {
      // The store may be down while the cache serves: that topic gets no update this time
      // (the consumer keeps what it has), the others are answered.
      inlineData = await this.#checker.inlineData(record).catch((err: unknown) => {
        this.#onError(err, `inline data of ${record.topic} version ${record.version}`);
        return undefined;
      });
      if (inlineData === undefined) return undefined;
    }
    return Object.freeze({
      topic: state.topic.name,
      version: viewOf(record, state.releases, region),
      ...(inlineData === undefined ? {} : { inlineData }),
      via,
    });
  }

  /** The poll's answer: inline bytes within the poll's budget (in request order); shared objects where the answer is common. */
  #result(updates: TopicUpdate[] | undefined, errors: TopicStatus[] | undefined): PollResult {
    const stale = this.#cache.stale;
    if (updates === undefined) {
      if (errors === undefined) return stale ? NO_CHANGE_STALE : NO_CHANGE;
      return { updates: [], errors, nextPollMs: 0, stale };
    }
    let budget = POLL_INLINE_BUDGET_BYTES;
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i] as TopicUpdate;
      if (u.inlineData === undefined) continue;
      if (u.inlineData.byteLength <= budget) budget -= u.inlineData.byteLength;
      else updates[i] = { topic: u.topic, version: u.version, via: u.via };
    }
    if (updates.length === 1 && errors === undefined) {
      // One update, no error: the same answer object for every consumer it goes to.
      const u = updates[0] as TopicUpdate;
      const memo = stale ? this.#singleStale : this.#single;
      let r = memo.get(u);
      if (r === undefined) {
        r = Object.freeze({ updates: Object.freeze([u]) as TopicUpdate[], errors: EMPTY_ERRORS, nextPollMs: 0, stale });
        memo.set(u, r);
      }
      return r;
    }
    return { updates, errors: errors ?? [], nextPollMs: 0, stale };
  }

  /** The topic state's current resolution (computed once per state object). */
  #currentOf(state: TopicState): ResolutionState {
    let current = this.#current.get(state);
    if (current === undefined) {
      current = currentResolution(state.resolution);
      this.#current.set(state, current);
    }
    return current;
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

  /**
   * Per (instance, topic) the last report, updated in place: a poll allocates nothing for
   * an instance and topic already reported since the last flush.
   */
  #recordFleet(req: PollRequest): void {
    const instance = req.identity.instance as string;
    let mine = this.#fleet.get(instance);
    if (mine === undefined) {
      mine = new Map();
      this.#fleet.set(instance, mine);
    }
    const now = this.#clock.now();
    const identity = req.identity;
    for (const s of req.subs) {
      const version = s.appliedVersion || s.knownVersion;
      const e = mine.get(s.topic);
      if (e === undefined) {
        mine.set(s.topic, { identity, version, failedVersion: s.failedVersion, error: s.error, reportedAt: now });
      } else {
        e.identity = identity;
        e.version = version;
        e.failedVersion = s.failedVersion;
        e.error = s.error;
        e.reportedAt = now;
      }
    }
  }

  /** Write the aggregated reports (upsert batches of 500); kept for the next flush when it fails. */
  flushFleetReports(): Promise<void> {
    if (this.#fleet.size === 0) return this.#flushing ?? Promise.resolve();
    this.#flushing ??= (async () => {
      // Yield first: the `finally` below must run after `#flushing` is assigned.
      await Promise.resolve();
      try {
        while (this.#fleet.size > 0) {
          const taken = this.#fleet;
          this.#fleet = new Map();
          const items: Array<[string, string, FleetEntry]> = [];
          for (const [instance, topics] of taken) for (const [topic, e] of topics) items.push([instance, topic, e]);
          for (let i = 0; i < items.length; i += 500) {
            const batch = items.slice(i, i + 500);
            try {
              await this.#store.putFleetReports(batch.map(([instance, topic, e]) => fleetReport(instance, topic, e)));
            } catch (err) {
              // Put back what no newer report replaced meanwhile; try again next period.
              for (const [instance, topic, e] of items.slice(i)) {
                let mine = this.#fleet.get(instance);
                if (mine === undefined) {
                  mine = new Map();
                  this.#fleet.set(instance, mine);
                }
                if (!mine.has(topic)) mine.set(topic, e);
              }
              this.#onError(err, 'fleet report flush');
              return;
            }
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
    const data = await this.#checker.inlineData(record);
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
    const first = !this.#closing;
    this.#closing = true;
    const n = this.#waiters.drainAll();
    if (first) for (const l of this.#drainListeners) l();
    return n;
  }

  /** Called once when draining starts (the gRPC transport ends its idle poll streams). */
  onDrain(listener: () => void): () => void {
    this.#drainListeners.add(listener);
    return () => this.#drainListeners.delete(listener);
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

/** A non-negative integer (absent = 0); the field is named only on an error. */
function count(value: unknown, idx: number, name: string, field: (idx: number, name: string) => string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  return nonNegativeInt(value, field(idx, name));
}

/**
 * `known`: a cached topic's own name string, or undefined. A cached topic's name needs no
 * re-validation, and the request keeps the cache's string instead of the one just parsed:
 * every later lookup of it (the duplicate check, the cache, the fleet record) then hashes
 * nothing and compares one pointer (about a third of a 200-topic poll's own work went to
 * hashing and comparing freshly parsed names).
 */
function parsePoll(input: PollInput, known: (topic: string) => string | undefined): PollRequest {
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
  // Field names are built only for an error (this runs for every subscription of every poll).
  const field = (idx: number, name?: string): string => (name === undefined ? `subscriptions[${idx}]` : `subscriptions[${idx}].${name}`);
  const seen = list.length > 1 ? new Set<string>() : undefined;
  const subs: Sub[] = new Array<Sub>(list.length);
  for (let idx = 0; idx < list.length; idx++) {
    const raw: unknown = list[idx];
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw QuireError.invalid(field(idx), 'must be an object');
    const s = raw as SubscriptionInput;
    const topic = (typeof s.topic === 'string' ? known(s.topic) : undefined) ?? validateTopicName(s.topic, field(idx, 'topic'));
    if (seen !== undefined) {
      if (seen.has(topic)) throw QuireError.invalid(field(idx, 'topic'), `${topic} is listed twice`);
      seen.add(topic);
    }
    const error = s.error === undefined || s.error === null || s.error === '' ? '' : (optString(s.error, field(idx, 'error'), Infinity) ?? '');
    subs[idx] = {
      topic,
      knownVersion: count(s.knownVersion, idx, 'knownVersion', field),
      appliedVersion: count(s.appliedVersion, idx, 'appliedVersion', field),
      failedVersion: count(s.failedVersion, idx, 'failedVersion', field),
      error: error.length > LIMITS.maxErrorLength ? error.slice(0, LIMITS.maxErrorLength) : error,
    };
  }
  const waitMs = input.waitMs === undefined || input.waitMs === null ? 0 : input.waitMs;
  if (typeof waitMs !== 'number' || !Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > LIMITS.maxWaitMs) {
    throw QuireError.invalid('waitMs', `must be an integer between 0 and ${LIMITS.maxWaitMs}`);
  }
  return { identity, subs, waitMs };
}
