/**
 * The consumer: one client per process, any number of subscriptions. One batched `Poll`
 * per cycle carries every subscription (the version each holds, the one it runs, and
 * whether its last apply failed); every `pollIntervalMs` ±10%, or — with `longPoll` —
 * re-armed as soon as an answer arrives. Each update is fetched (inline bytes from the
 * answer, else S3 with region fallback), checked against its SHA-256, decoded, and only
 * then swapped in and announced. A failed apply keeps the old value and is reported on
 * the next poll; a subscription with nothing yet walks back through the history.
 * Retryable failures (UNAVAILABLE, DEADLINE_EXCEEDED) are retried with backoff on the
 * next endpoint.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type * as grpc from '@grpc/grpc-js';
import { Code, QuireError, scopeMatches, validateTopicName } from '@quire/core';
import type { ConsumerIdentity, Metadata, Page } from '@quire/core';
import type { ConsumeServiceClient, PbPollResponseOutput } from '@quire/proto';
import { S3Downloader, verifyPayload, type S3RegionClientOptions } from './download.ts';
import { RETRYABLE_CODES, backoffDelay, fromGrpcError, isRetryable, jitter, sleep } from './errors.ts';
import { History, createConsumePool, identityToPb, type ListVersionsOptions } from './history.ts';
import { versionFromPb, type VersionInfo } from './mapping.ts';
import { unary, withRetry, type EndpointPool, type RetryOptions } from './transport.ts';

export interface ConsumerIdentityInput {
  application: string;
  cluster?: string;
  region?: string;
  /** Default: `<hostname>-<pid>-<random>`. */
  instance?: string;
  [attribute: string]: string | undefined;
}

export interface ConsumerOptions {
  /** `host:port` of one or more consume services (taken round-robin). */
  endpoints: string[];
  identity: ConsumerIdentityInput;
  /** Between polls without long-poll (default 30 000 ms, jittered ±10%). */
  pollIntervalMs?: number;
  /** Hold each poll on the server up to `waitMs` and poll again at once after each answer. */
  longPoll?: { waitMs: number };
  /** How to read S3-stored versions, per region name. */
  s3?: Record<string, S3RegionClientOptions>;
  retry?: RetryOptions;
  /** Older versions a subscription with nothing applied tries when the newest fails (default 3). */
  maxFallbackVersions?: number;
  /**
   * Extra gRPC channel options. grpc-js shares one connection among every client of a process
   * with the same target and options; `{ 'grpc.use_local_subchannel_pool': 1 }` gives this
   * consumer its own connection (used by the benchmarks to model separate instances).
   */
  channelOptions?: grpc.ChannelOptions;
}

export interface UpdateEvent<T> {
  version: number;
  metadata: Metadata;
  value: T;
  descriptor: VersionInfo;
  /** Whether the service handed this version out by release or by pin (`fallback` when chosen from history). */
  via: string;
}

export interface SubscribeOptions<T> {
  /** Runs before the swap; a throw is an apply failure (the old value stays). Default: the bytes. */
  decode?: (bytes: Uint8Array, descriptor: VersionInfo) => T;
  defaultValue?: T;
}

export interface Subscription<T> {
  readonly topic: string;
  /** The value of the applied version (or the default value). */
  current(): T;
  /** Applied version (0 = none). */
  version(): number;
  descriptor(): VersionInfo | undefined;
  on(event: 'update', listener: (e: UpdateEvent<T>) => void): this;
  on(event: 'error', listener: (err: QuireError) => void): this;
  off(event: 'update', listener: (e: UpdateEvent<T>) => void): this;
  off(event: 'error', listener: (err: QuireError) => void): this;
}

export interface Consumer {
  subscribe<T = Uint8Array>(topic: string, options?: SubscribeOptions<T>): Subscription<T>;
  start(): void;
  /** Resolves after the first poll cycle (its updates applied or failed). */
  ready(): Promise<void>;
  close(): Promise<void>;
  /** Consumer-level errors (a poll that failed after its retries). */
  on(event: 'error', listener: (err: QuireError) => void): this;
  getVersion(topic: string, version: number): Promise<VersionInfo>;
  listVersions(topic: string, options?: ListVersionsOptions): Promise<Page<VersionInfo>>;
  versionAt(topic: string, at: Date | number): Promise<VersionInfo>;
  /** A version's bytes, verified against its SHA-256. */
  download(topic: string, version: number): Promise<Uint8Array>;
}

class SubscriptionImpl<T> extends EventEmitter implements Subscription<T> {
  readonly topic: string;
  readonly decode: (bytes: Uint8Array, d: VersionInfo) => T;
  /** Applied state, replaced in one assignment (readers never see half a swap). */
  #state: { value: T; descriptor: VersionInfo | undefined };
  /** Highest version the service handed us (applied or failed): what we tell it we hold. */
  known = 0;
  failedVersion = 0;
  error = '';
  /** Code of the last failed apply (decides whether the version is offered again). */
  lastFailureCode: Code | undefined;

  constructor(topic: string, options: SubscribeOptions<T>) {
    super();
    this.topic = topic;
    this.decode = options.decode ?? ((bytes) => bytes as unknown as T);
    this.#state = { value: options.defaultValue as T, descriptor: undefined };
  }

  current(): T {
    return this.#state.value;
  }
  version(): number {
    return this.#state.descriptor?.version ?? 0;
  }
  descriptor(): VersionInfo | undefined {
    return this.#state.descriptor;
  }

  swap(descriptor: VersionInfo, value: T, via: string): void {
    this.#state = { value, descriptor };
    this.failedVersion = 0;
    this.error = '';
    this.lastFailureCode = undefined;
    const event: UpdateEvent<T> = { version: descriptor.version, metadata: descriptor.metadata, value, descriptor, via };
    try {
      this.emit('update', event);
    } catch (err) {
      this.report(new QuireError(Code.INTERNAL, `${this.topic}: an update handler threw: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    }
  }

  fail(version: number, err: QuireError): void {
    this.lastFailureCode = err.code;
    this.failedVersion = version;
    this.error = err.message;
    this.report(err);
  }

  report(err: QuireError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

export function createConsumer(options: ConsumerOptions): Consumer {
  if (options.identity === undefined || typeof options.identity.application !== 'string' || options.identity.application === '') {
    throw QuireError.invalid('identity.application', 'is required');
  }
  const identity: ConsumerIdentity = {};
  for (const [k, v] of Object.entries(options.identity)) if (v !== undefined && v !== '') identity[k] = v;
  identity.instance ??= `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const pollIntervalMs = options.pollIntervalMs ?? 30_000;
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 0) throw QuireError.invalid('pollIntervalMs', 'must be a number of ms ≥ 0');
  const waitMs = options.longPoll?.waitMs;
  if (waitMs !== undefined && (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > 60_000)) {
    throw QuireError.invalid('longPoll.waitMs', 'must be an integer between 0 and 60000');
  }
  const pool: EndpointPool<ConsumeServiceClient> = createConsumePool(options.endpoints);
  const s3 = new S3Downloader(options.s3 ?? {}, identity.region);
  const history = new History(pool, identity, s3, options.retry);
  const maxFallback = options.maxFallbackVersions ?? 3;
  const subs = new Map<string, SubscriptionImpl<unknown>>();
  const emitter = new EventEmitter();
  const stop = new AbortController();

  let started = false;
  let loop: Promise<void> | undefined;
  let inFlight: grpc.ClientUnaryCall | undefined;
  /** Set when the subscription list changed during a held poll (it is cancelled and re-sent). */
  let resubscribe = false;
  /** Ends the pause between two polls early. */
  let wake: (() => void) | undefined;
  let markReady: () => void = () => {};
  const readyPromise = new Promise<void>((resolve) => (markReady = resolve));

  const reportError = (err: QuireError): void => {
    if (emitter.listenerCount('error') > 0) emitter.emit('error', err);
  };

  async function pollOnce(wait: number): Promise<PbPollResponseOutput | undefined> {
    const list = [...subs.values()];
    if (list.length === 0) return undefined;
    const req = {
      identity: identityToPb(identity),
      subscriptions: list.map((s) => ({
        topic: s.topic,
        knownVersion: s.known,
        appliedVersion: s.version(),
        failedVersion: s.failedVersion,
        error: s.error,
      })),
      waitMs: wait,
    };
    try {
      return await withRetry(
        pool,
        (client) => unary<PbPollResponseOutput>(client, 'Poll', req, { timeoutMs: wait + 15_000, onCall: (c) => (inFlight = c) }),
        options.retry,
        stop.signal,
      );
    } catch (err) {
      // Our own cancel (close, or a new subscription during a held poll) is not a failure.
      if (err instanceof QuireError && err.code === Code.CANCELLED && (stop.signal.aborted || resubscribe)) return undefined;
      throw err;
    } finally {
      inFlight = undefined;
    }
  }

  /** Inline bytes from the answer, else ReadInline / S3; verified either way. */
  async function bytesOf(d: VersionInfo, inline: Buffer | undefined): Promise<Uint8Array> {
    if (d.pointer.kind === 'inline' && inline !== undefined && (inline.byteLength > 0 || d.size === 0)) {
      const bytes = new Uint8Array(inline.buffer, inline.byteOffset, inline.byteLength);
      verifyPayload(bytes, d);
      return bytes;
    }
    return history.bytesOf(d);
  }

  /** Fetch, verify, decode; swap only when all three succeed. */
  async function apply(sub: SubscriptionImpl<unknown>, d: VersionInfo, inline: Buffer | undefined, via: string): Promise<boolean> {
    try {
      const bytes = await bytesOf(d, inline);
      let value: unknown;
      try {
        value = sub.decode(bytes, d);
      } catch (err) {
        throw new QuireError(Code.FAILED_PRECONDITION, `${d.topic} version ${d.version}: decode failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      if (stop.signal.aborted) return false;
      sub.swap(d, value, via);
      return true;
    } catch (err) {
      sub.fail(d.version, fromGrpcError(err));
      return false;
    }
  }

  /** A subscription with nothing applied whose newest failed: the newest older versions meant for us. */
  async function fallBack(sub: SubscriptionImpl<unknown>, failed: number): Promise<void> {
    let page: Page<VersionInfo>;
    try {
      page = await history.listVersions(sub.topic, { limit: 50 });
    } catch (err) {
      sub.report(fromGrpcError(err));
      return;
    }
    const candidates = page.items
      .filter((v) => v.version < failed && v.deletedAt === undefined && v.scopes.some((s) => scopeMatches(s, identity)))
      .slice(0, maxFallback);
    const failure = { version: sub.failedVersion, error: sub.error };
    for (const v of candidates) {
      if (stop.signal.aborted) return;
      if (await apply(sub, v, undefined, 'fallback')) {
        // Still report the newest failure: the fleet view should see it.
        sub.failedVersion = failure.version;
        sub.error = failure.error;
        return;
      }
    }
    sub.failedVersion = failure.version;
    sub.error = failure.error;
  }

  /**
   * Apply every update of an answer. Returns true when one failed for a transient reason
   * (S3 unreachable): that version is not recorded as held, so the service offers it
   * again, and the caller backs off before the next poll. Any other failure (checksum,
   * decode) is final for that version: we tell the service we hold it (known), run the
   * old one (applied) and report the failure.
   */
  async function handle(res: PbPollResponseOutput): Promise<boolean> {
    let transient = false;
    await Promise.all(
      res.updates.map(async (u) => {
        const sub = subs.get(u.topic);
        if (sub === undefined || u.version === null) return;
        const d = versionFromPb(u.version);
        const before = sub.known;
        sub.known = d.version;
        const ok = await apply(sub, d, u.inlineData, u.via);
        if (ok || stop.signal.aborted) return;
        if (sub.lastFailureCode !== undefined && RETRYABLE_CODES.has(sub.lastFailureCode)) {
          sub.known = before;
          transient = true;
          return;
        }
        if (sub.version() === 0) await fallBack(sub, d.version);
      }),
    );
    for (const e of res.errors) {
      const sub = subs.get(e.topic);
      const code = (Object.values(Code) as string[]).includes(e.errorCode) ? (e.errorCode as Code) : Code.INTERNAL;
      sub?.report(new QuireError(code, e.errorMessage || `${e.topic}: ${e.errorCode}`, { field: 'topic' }));
    }
    return transient;
  }

  async function run(): Promise<void> {
    let first = true;
    let failures = 0;
    while (!stop.signal.aborted) {
      let delay: number;
      try {
        // The first cycle answers at once (ready() should not wait out a long-poll).
        const wait = first || waitMs === undefined ? 0 : waitMs;
        resubscribe = false;
        const polledAt = Date.now();
        const res = await pollOnce(wait);
        // A long-poll that came back empty well before its wait (a draining service) must not
        // turn into a tight loop.
        const cutShort = wait > 0 && res !== undefined && res.updates.length === 0 && Date.now() - polledAt < wait / 2;
        const transient = res === undefined ? false : await handle(res);
        const suggested = res?.nextPollMs ?? 0;
        delay = resubscribe ? 0 : Math.max(waitMs !== undefined ? 0 : jitter(pollIntervalMs), suggested);
        // A download that failed for now: back off before asking again. (The service holds a
        // long-poll whose topics only err (unknown, denied) until its wait ends, so those
        // need no extra delay after a held poll; after an unheld one, wait a little.)
        if (transient) delay = Math.max(delay, backoffDelay(failures++, { baseMs: 500, maxMs: 30_000 }));
        else failures = 0;
        if (res !== undefined && res.updates.length === 0 && res.errors.length > 0) delay = Math.max(delay, jitter(wait > 0 ? 0 : Math.min(pollIntervalMs, 1000)));
        if (res === undefined && subs.size === 0) delay = Math.max(delay, 50);
        if (cutShort && !resubscribe) delay = Math.max(delay, jitter(1000));
      } catch (err) {
        const q = fromGrpcError(err);
        reportError(q);
        for (const s of subs.values()) s.report(q);
        delay = isRetryable(q) ? backoffDelay(failures++, { baseMs: 200, maxMs: 30_000 }) : jitter(waitMs !== undefined ? 1000 : pollIntervalMs);
      }
      if (first) {
        first = false;
        markReady();
      }
      if (delay > 0) {
        // A new subscription cuts the wait short (see subscribe()).
        const nap = new AbortController();
        wake = () => nap.abort();
        const onStop = (): void => nap.abort();
        stop.signal.addEventListener('abort', onStop, { once: true });
        await sleep(delay, nap.signal);
        stop.signal.removeEventListener('abort', onStop);
        wake = undefined;
      }
    }
  }

  const consumer: Consumer & { on(event: 'error', l: (err: QuireError) => void): Consumer } = {
    subscribe<T = Uint8Array>(topic: string, subOptions: SubscribeOptions<T> = {}): Subscription<T> {
      const name = validateTopicName(topic, 'topic');
      if (subs.has(name)) throw QuireError.invalid('topic', `${name} is already subscribed`);
      const sub = new SubscriptionImpl<T>(name, subOptions);
      subs.set(name, sub as SubscriptionImpl<unknown>);
      // A held poll does not know this topic yet: cut it short so the next one carries it.
      if (inFlight !== undefined) {
        resubscribe = true;
        inFlight.cancel();
      }
      wake?.();
      return sub;
    },
    start() {
      if (started) return;
      started = true;
      loop = run();
    },
    ready() {
      if (!started) consumer.start();
      return readyPromise;
    },
    async close() {
      stop.abort();
      inFlight?.cancel();
      markReady();
      await loop?.catch(() => {});
      pool.close();
      s3.close();
    },
    on(event: 'error', listener: (err: QuireError) => void) {
      emitter.on(event, listener);
      return consumer;
    },
    getVersion: (topic, version) => history.getVersion(topic, version),
    listVersions: (topic, o) => history.listVersions(topic, o),
    versionAt: (topic, at) => history.versionAt(topic, at),
    download: (topic, version) => history.download(topic, version),
  };
  return consumer;
}
