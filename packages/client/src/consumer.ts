/**
 * The consumer: one client per process, any number of subscriptions. One batched `Poll`
 * per cycle carries every subscription (the version each holds, the one it runs, and
 * whether its last apply failed); every `pollIntervalMs` ±10%, or — with `longPoll` —
 * re-armed as soon as an answer arrives. Each update is fetched (inline bytes from the
 * answer, else S3 with region fallback), checked against its SHA-256, decoded, and only
 * then swapped in and announced. A failed apply keeps the old value and is reported on
 * the next poll; a subscription with nothing yet walks back through the history.
 *
 * Resilience (Gutenberg's rule: starting matters more than fresh data, and nothing held is
 * ever replaced by something half-written):
 * - endpoints: several addresses (a list, or a DNS name resolving to several), health-checked
 *   with grpc.health.v1 and taken round-robin (balancer.ts); each call is retried on
 *   `RETRYABLE_CODES` with jittered exponential backoff on the next healthy endpoint;
 * - fallback: when a poll still fails after its retries, the topics' S3 snapshots are read
 *   (own region first) and resolved with the consume service's own functions; polling goes
 *   on (jittered backoff) and the consumer returns to the service when it answers
 *   (`fallback` / `recovered` events, `quire_client_fallback_active`);
 * - disk cache (`cacheDir`): each applied version is written atomically with its
 *   checksums; at start, a subscription begins from it before the first poll, so a consumer
 *   restarted while the service and S3 are down still starts. A corrupt file is refused.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { channel } from 'node:diagnostics_channel';
import type * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { Code, QuireError, validateTopicName } from '@quire/core';
import type { ConsumerIdentity, Metadata, Page } from '@quire/core';
import type { PbPollResponseOutput } from '@quire/proto';
import type { EndpointHealth, HealthCheckOptions } from './balancer.ts';
import { DiskCache } from './disk-cache.ts';
import { S3Downloader, verifyPayload, type DownloadProgress, type RegionFailure, type S3RegionClientOptions } from './download.ts';
import { decryptPayload, decryptingTransform, type KeyProvider } from './encryption.ts';
import { RETRYABLE_CODES, backoffDelay, fromGrpcError, isRetryable, jitter } from './errors.ts';
import { History, createHealthCheckedConsumePool, identityToPb, type ListVersionsOptions } from './history.ts';
import { versionFromPb, type VersionInfo } from './mapping.ts';
import { ConsumerMetrics, type MetricsOptions } from './metrics.ts';
import { historyCandidates, readSnapshot, snapshotCandidates } from './snapshot-fallback.ts';
import { StreamCaller, unary, withRetry, type Cancellable, type RetryOptions } from './transport.ts';

/**
 * A poll answer with updates, as decoded (before the downloads, checks and handlers): a
 * Node `diagnostics_channel`, inert without a subscriber; the propagation benchmark's
 * subscriber processes stamp it to split the transport from the SDK's own work.
 */
const pollAnswerReceived = channel('quire.client.pollAnswer');

export interface ConsumerIdentityInput {
  application: string;
  cluster?: string;
  region?: string;
  /** Default: `<hostname>-<pid>-<random>`. */
  instance?: string;
  [attribute: string]: string | undefined;
}

export interface FallbackOptions {
  /** Consecutive failed polls (each after its retries) before the snapshots are used (default 1). */
  afterFailures?: number;
  /** While on fallback, how often the snapshots are read again (default 30 000 ms). */
  refreshMs?: number;
}

export interface ConsumerOptions {
  /**
   * The consume service: `host:port` of each instance, or a host name (`dns:` prefix
   * optional) resolving to several. Health-checked, healthy ones taken round-robin.
   */
  endpoints: string[];
  identity: ConsumerIdentityInput;
  /** Between polls without long-poll (default 30 000 ms, jittered ±10%). */
  pollIntervalMs?: number;
  /**
   * Hold each poll on the server up to `waitMs` and poll again at once after each answer.
   * `stream` (default true): the polls go one after another on one `PollStream` per
   * endpoint instead of one `Poll` call each (no call set-up per poll: an answer after a
   * publish costs the service and the consumer one message); false: unary `Poll` calls.
   */
  longPoll?: { waitMs: number; stream?: boolean };
  /**
   * How to read S3, per region name. `bucket` (the services' bucket there) is needed for
   * the fallback snapshots.
   */
  s3?: Record<string, S3RegionClientOptions>;
  /** Per-call retries (default 4 attempts, 100 ms doubling up to 5 s, jittered). */
  retry?: RetryOptions;
  /**
   * Deadline of one poll attempt beyond its long-poll wait (default 10 000 ms). With a
   * service that drops packets, the first cycle (and so `ready()`) takes up to
   * `retry.attempts` × this before the snapshots are tried.
   */
  pollTimeoutMs?: number;
  /** Between failed polls: jittered exponential backoff (default 200 ms doubling up to 30 s). */
  reconnect?: { baseMs?: number; maxMs?: number };
  /**
   * Before re-arming the long-poll after the service came back (or drained it), a random
   * pause in [0, rearmJitterMs] (default 1000 ms): clients that lost the same instance do
   * not all land on the next one in the same instant.
   */
  rearmJitterMs?: number;
  /**
   * Long-poll only: after an answer that carried an update, a random pause in
   * [rearmAfterUpdateMs / 2, rearmAfterUpdateMs × 1.5] (default 500 ms, so 250 to 750 ms;
   * 0 = re-arm at once) before the next poll. A fleet woken by one publish then sends no
   * re-poll while the service is still answering the rest of the fleet (a re-poll in that
   * window costs the service a decode, an evaluation and a hold, and slowed the fan-out:
   * with [0, 250 ms] a third to a half of 1,000 consumers re-polled inside it), and the
   * re-polls are spread out after it. Nothing is missed: a version published during the
   * pause is answered at once by the poll that follows it, at most 1.5 × this later.
   */
  rearmAfterUpdateMs?: number;
  /** grpc.health.v1 checks of each endpoint (default every 5 s; `intervalMs: 0` = off). */
  healthCheck?: HealthCheckOptions;
  /** S3 snapshot fallback when the service cannot be reached (default on; `false` = off). */
  fallback?: FallbackOptions | false;
  /** Directory for the disk cache of the last applied version of each topic (default: none). */
  cacheDir?: string;
  /** Prometheus metrics (prom-client): `true` = a new Registry (`consumer.metrics`), or pass yours. */
  metrics?: true | MetricsOptions;
  /** Older versions a subscription with nothing applied tries when the newest fails (default 3). */
  maxFallbackVersions?: number;
  /** API token (`quire tokens create`), sent as `authorization: Bearer …` on every call. */
  token?: string;
  /** Keys of encrypted topics: their payloads are decrypted after the checksum check. */
  keyring?: KeyProvider;
  /**
   * Extra gRPC channel options. grpc-js shares one connection among every client of a process
   * with the same target and options; `{ 'grpc.use_local_subchannel_pool': 1 }` gives this
   * consumer its own connection (used by the benchmarks to model separate instances).
   */
  channelOptions?: grpc.ChannelOptions;
}

/**
 * How the applied version was chosen: `release` / `pin` (by the consume service),
 * `fallback` (walked back through the history after the newest failed), `snapshot`
 * (from the S3 fallback snapshot, the service unreachable), `cache` (the disk cache at start).
 */
export type UpdateVia = 'release' | 'pin' | 'fallback' | 'snapshot' | 'cache' | (string & {});

export interface UpdateEvent<T> {
  version: number;
  metadata: Metadata;
  value: T;
  descriptor: VersionInfo;
  via: UpdateVia;
}

export interface FallbackEvent {
  /** The poll failure (after its retries) that started the fallback. */
  reason: QuireError;
  since: number;
}

export interface RecoveredEvent {
  /** How long the consumer ran on fallback. */
  fallbackMs: number;
}

export interface EndpointHealthEvent {
  address: string;
  state: EndpointHealth;
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
  /** How the applied version was chosen (undefined before any). */
  via(): UpdateVia | undefined;
  on(event: 'update', listener: (e: UpdateEvent<T>) => void): this;
  on(event: 'error', listener: (err: QuireError) => void): this;
  off(event: 'update', listener: (e: UpdateEvent<T>) => void): this;
  off(event: 'error', listener: (err: QuireError) => void): this;
}

export interface Consumer {
  subscribe<T = Uint8Array>(topic: string, options?: SubscribeOptions<T>): Subscription<T>;
  start(): void;
  /** Resolves after the first poll cycle (its updates applied or failed, or the fallbacks tried). */
  ready(): Promise<void>;
  close(): Promise<void>;
  /** True while the consumer runs on the S3 snapshots (the service unreachable). */
  usingFallback(): boolean;
  /** Each consume address and its last health-check result. */
  endpoints(): { address: string; state: EndpointHealth }[];
  /** The metrics registry (`metrics` option), else undefined. */
  readonly metrics: Registry | undefined;
  /** Consumer-level errors (a poll that failed after its retries, a snapshot that could not be read). */
  on(event: 'error', listener: (err: QuireError) => void): this;
  /** The service could not be reached after the retries: the S3 snapshots are used from now on. */
  on(event: 'fallback', listener: (e: FallbackEvent) => void): this;
  /** The service answers again: back from the fallback. */
  on(event: 'recovered', listener: (e: RecoveredEvent) => void): this;
  /** An S3 read failed in one region (unreachable, or a checksum mismatch: the object was rejected); the next region is tried. */
  on(event: 'region-failure', listener: (f: RegionFailure) => void): this;
  /** An endpoint's health changed. */
  on(event: 'endpoint-health', listener: (e: EndpointHealthEvent) => void): this;
  getVersion(topic: string, version: number): Promise<VersionInfo>;
  listVersions(topic: string, options?: ListVersionsOptions): Promise<Page<VersionInfo>>;
  versionAt(topic: string, at: Date | number): Promise<VersionInfo>;
  /** A version's bytes, verified against its SHA-256. */
  download(topic: string, version: number): Promise<Uint8Array>;
  /**
   * A version's bytes written to the file `path` without holding them in memory (for
   * versions too big for `download`): streamed through the SHA-256 check (and decryption)
   * into a temp file beside `path`, fsynced, renamed to `path` only once verified; a
   * refused region's temp file is deleted and the next region tried. Resolves to `path`.
   */
  downloadTo(topic: string, version: number, path: string, options?: { onProgress?: (p: DownloadProgress) => void }): Promise<string>;
}

class SubscriptionImpl<T> extends EventEmitter implements Subscription<T> {
  readonly topic: string;
  readonly decode: (bytes: Uint8Array, d: VersionInfo) => T;
  /** Applied state, replaced in one assignment (readers never see half a swap). */
  #state: { value: T; descriptor: VersionInfo | undefined; via: UpdateVia | undefined };
  /** Highest version the service handed us (applied or failed): what we tell it we hold. */
  known = 0;
  failedVersion = 0;
  error = '';
  /** Code of the last failed apply (decides whether the version is offered again). */
  lastFailureCode: Code | undefined;
  /** Whether the disk cache was looked at for this subscription. */
  cacheChecked = false;
  /** When its snapshot was last read on fallback (0 = not since the fallback began). */
  snapshotReadAt = 0;
  /**
   * When what we hold was last confirmed: the consume service's last answer carrying this
   * topic, or the disk cache file's write time (ms since the epoch; 0 = never).
   */
  confirmedAt = 0;

  constructor(topic: string, options: SubscribeOptions<T>) {
    super();
    this.topic = topic;
    this.decode = options.decode ?? ((bytes) => bytes as unknown as T);
    this.#state = { value: options.defaultValue as T, descriptor: undefined, via: undefined };
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
  via(): UpdateVia | undefined {
    return this.#state.via;
  }

  swap(descriptor: VersionInfo, value: T, via: UpdateVia): void {
    this.#state = { value, descriptor, via };
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

function positiveMs(value: number | undefined, fallback: number, field: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw QuireError.invalid(field, 'must be a number of ms ≥ 0');
  return v;
}

export function createConsumer(options: ConsumerOptions): Consumer {
  if (options.identity === undefined || typeof options.identity.application !== 'string' || options.identity.application === '') {
    throw QuireError.invalid('identity.application', 'is required');
  }
  const identity: ConsumerIdentity = {};
  for (const [k, v] of Object.entries(options.identity)) if (v !== undefined && v !== '') identity[k] = v;
  identity.instance ??= `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const pollIntervalMs = positiveMs(options.pollIntervalMs, 30_000, 'pollIntervalMs');
  const waitMs = options.longPoll?.waitMs;
  if (waitMs !== undefined && (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > 60_000)) {
    throw QuireError.invalid('longPoll.waitMs', 'must be an integer between 0 and 60000');
  }
  const reconnect = {
    baseMs: positiveMs(options.reconnect?.baseMs, 200, 'reconnect.baseMs'),
    maxMs: positiveMs(options.reconnect?.maxMs, 30_000, 'reconnect.maxMs'),
  };
  const rearmJitterMs = positiveMs(options.rearmJitterMs, 1000, 'rearmJitterMs');
  const rearmAfterUpdateMs = positiveMs(options.rearmAfterUpdateMs, 500, 'rearmAfterUpdateMs');
  const pollTimeoutMs = positiveMs(options.pollTimeoutMs, 10_000, 'pollTimeoutMs');
  const fallback =
    options.fallback === false
      ? undefined
      : {
          afterFailures: Math.max(1, Math.floor(options.fallback?.afterFailures ?? 1)),
          refreshMs: positiveMs(options.fallback?.refreshMs, 30_000, 'fallback.refreshMs'),
        };
  const cache = options.cacheDir === undefined ? undefined : new DiskCache(options.cacheDir);
  const metrics =
    options.metrics === undefined ? undefined : new ConsumerMetrics(options.metrics === true ? {} : options.metrics);
  const maxFallback = options.maxFallbackVersions ?? 3;

  const pool = createHealthCheckedConsumePool(options.endpoints, options.healthCheck, options.token, options.channelOptions);
  const s3 = new S3Downloader(options.s3 ?? {}, identity.region);
  const history = new History(pool, identity, s3, options.retry);
  const subs = new Map<string, SubscriptionImpl<unknown>>();
  const emitter = new EventEmitter();
  const stop = new AbortController();

  const emit = (event: string, payload: unknown): void => {
    if (emitter.listenerCount(event) === 0) return;
    try {
      emitter.emit(event, payload);
    } catch {
      // a listener's failure must not stop the poll loop
    }
  };
  s3.onRegionFailure = (f) => {
    metrics?.downloadFailures.inc({ region: f.region, reason: f.reason });
    emit('region-failure', f);
  };
  pool.onHealthChange = (address, state) => emit('endpoint-health', { address, state } satisfies EndpointHealthEvent);

  let started = false;
  let loop: Promise<void> | undefined;
  let inFlight: Cancellable | undefined;
  /** Long-polls on one stream per endpoint (see `longPoll.stream`). */
  const streams = waitMs !== undefined && options.longPoll?.stream !== false ? new StreamCaller('PollStream') : undefined;
  /** Set when the subscription list changed during a held poll (it is cancelled and re-sent). */
  let resubscribe = false;
  /** Ends the pause between two polls early. */
  let wake: (() => void) | undefined;
  let markReady: () => void = () => {};
  const readyPromise = new Promise<void>((resolve) => (markReady = resolve));
  /** Since when the consumer runs on the snapshots (undefined: on the service). */
  let fallbackSince: number | undefined;

  const reportError = (err: QuireError): void => emit('error', err);
  /** The identity never changes: mapped once, not on every poll. */
  const identityPb = identityToPb(identity);

  async function pollOnce(wait: number): Promise<PbPollResponseOutput | undefined> {
    const list = [...subs.values()];
    if (list.length === 0) return undefined;
    const req = {
      identity: identityPb,
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
      const res = await withRetry(
        pool,
        (client) =>
          streams !== undefined
            ? streams.call<PbPollResponseOutput>(client, req, { timeoutMs: wait + pollTimeoutMs, onCall: (c) => (inFlight = c) })
            : unary<PbPollResponseOutput>(client, 'Poll', req, { timeoutMs: wait + pollTimeoutMs, onCall: (c) => (inFlight = c) }),
        options.retry,
        stop.signal,
      );
      const now = Date.now();
      for (const s of list) s.confirmedAt = now;
      metrics?.confirmed(list.map((s) => s.topic));
      return res;
    } catch (err) {
      // Our own cancel (close, or a new subscription during a held poll) is not a failure.
      if (err instanceof QuireError && err.code === Code.CANCELLED && (stop.signal.aborted || resubscribe)) return undefined;
      throw err;
    } finally {
      inFlight = undefined;
    }
  }

  /** Inline bytes from the answer, else ReadInline / S3 (`apply` verifies them). */
  async function bytesOf(d: VersionInfo, inline: Buffer | undefined): Promise<Uint8Array> {
    if (d.pointer.kind === 'inline' && inline !== undefined && (inline.byteLength > 0 || d.size === 0)) {
      return new Uint8Array(inline.buffer, inline.byteOffset, inline.byteLength);
    }
    return history.bytesOf(d);
  }

  /**
   * Fetch, verify, decode; swap only when all three succeed; then keep it on disk. Every
   * path (poll answer, history walk-back, snapshot, disk cache) goes through here: the one
   * place where verified bytes become a value (a payload transform, e.g. decryption, belongs
   * between `verifyPayload` and `decode`; the disk cache keeps the bytes as verified).
   */
  async function apply(sub: SubscriptionImpl<unknown>, d: VersionInfo, fetch: () => Promise<Uint8Array>, via: UpdateVia): Promise<boolean> {
    let bytes: Uint8Array;
    try {
      bytes = await fetch();
      verifyPayload(bytes, d);
      const plain = await decryptPayload(options.keyring, d, bytes);
      let value: unknown;
      try {
        value = sub.decode(plain, d);
      } catch (err) {
        throw new QuireError(Code.FAILED_PRECONDITION, `${d.topic} version ${d.version}: decode failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      if (stop.signal.aborted) return false;
      sub.swap(d, value, via);
      metrics?.appliedVersion.set({ topic: sub.topic }, d.version);
    } catch (err) {
      metrics?.applyFailures.inc({ topic: sub.topic });
      sub.fail(d.version, fromGrpcError(err));
      return false;
    }
    if (cache !== undefined && via !== 'cache') {
      try {
        await cache.save(d, bytes);
      } catch (err) {
        const q = new QuireError(Code.UNAVAILABLE, `${d.topic} version ${d.version}: could not write the disk cache: ${(err as Error).message}`, { field: 'cacheDir', cause: err });
        sub.report(q);
        reportError(q);
      }
    }
    return true;
  }

  /** A subscription with nothing applied whose newest failed: the older versions meant for us (core's `candidateVersions`). */
  async function fallBack(sub: SubscriptionImpl<unknown>, failed: number): Promise<void> {
    let page: Page<VersionInfo>;
    try {
      page = await history.listVersions(sub.topic, { limit: 50 });
    } catch (err) {
      sub.report(fromGrpcError(err));
      return;
    }
    const byNumber = new Map(page.items.map((v) => [v.version, v]));
    const candidates = historyCandidates(page.items, identity, failed)
      .slice(0, maxFallback)
      .map((n) => byNumber.get(n) as VersionInfo);
    const failure = { version: sub.failedVersion, error: sub.error };
    for (const v of candidates) {
      if (stop.signal.aborted) return;
      if (await apply(sub, v, () => history.bytesOf(v), 'fallback')) break;
    }
    // Still report the newest failure: the fleet view should see it.
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
        const ok = await apply(sub, d, () => bytesOf(d, u.inlineData), u.via);
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

  /** Subscriptions not yet looked up in the disk cache start from it when they hold nothing. */
  async function loadCaches(): Promise<void> {
    if (cache === undefined) return;
    await Promise.all(
      [...subs.values()].map(async (sub) => {
        if (sub.cacheChecked) return;
        sub.cacheChecked = true;
        if (sub.version() !== 0) return;
        try {
          const hit = await cache.load(sub.topic);
          if (hit === undefined) return;
          if (await apply(sub, hit.descriptor, () => Promise.resolve(hit.bytes), 'cache')) {
            sub.known = Math.max(sub.known, hit.descriptor.version);
            // The file was written right after that version was confirmed (by the service or a
            // snapshot): a snapshot older than the file must not move us back.
            sub.confirmedAt = Math.max(sub.confirmedAt, Math.floor(hit.savedAt));
            metrics?.cacheLoads.inc({ result: 'applied' });
          }
        } catch (err) {
          // A corrupt file is never applied: the subscription starts as if there were none.
          const q = fromGrpcError(err);
          metrics?.cacheLoads.inc({ result: 'corrupt' });
          sub.report(q);
          reportError(q);
        }
      }),
    );
  }

  /**
   * On fallback: each subscription's snapshot, resolved with core's functions (snapshots
   * older than the service's last answer for the topic are skipped). A
   * subscription that holds a version moves only to the snapshot's first choice (and keeps
   * what it holds when that fails); one that holds nothing walks back the candidates.
   */
  async function applySnapshots(refreshMs: number): Promise<void> {
    const now = Date.now();
    await Promise.all(
      [...subs.values()].map(async (sub) => {
        // Each subscription on its own clock: one subscribed during the fallback is read at once.
        if (now - sub.snapshotReadAt < refreshMs) return;
        sub.snapshotReadAt = now;
        let read: Awaited<ReturnType<typeof readSnapshot>>;
        try {
          read = await readSnapshot(s3, sub.topic);
        } catch (err) {
          const q = fromGrpcError(err);
          sub.report(q);
          reportError(q);
          return;
        }
        // A snapshot written before the service last answered for this topic knows nothing
        // newer than what we were told: it must not move us (a stale region's copy would
        // otherwise undo a version the service handed out).
        if (read.snapshot.writtenAt <= sub.confirmedAt) return;
        const candidates = snapshotCandidates(read.snapshot, read.state, identity);
        const limit = sub.version() === 0 ? maxFallback : 1;
        for (const c of candidates.slice(0, limit)) {
          if (stop.signal.aborted || c.descriptor.version === sub.version()) return;
          const d = c.descriptor;
          // An inline version without its bytes in the snapshot (> 64 KiB) cannot be read without the service.
          if (d.pointer.kind === 'inline' && c.inline === undefined) continue;
          const ok = await apply(sub, d, () => (c.inline !== undefined ? Promise.resolve(c.inline) : s3.fetch(d)), 'snapshot');
          if (ok) {
            sub.known = d.version;
            return;
          }
        }
      }),
    );
  }

  function enterFallback(reason: QuireError): void {
    if (fallbackSince !== undefined) return;
    fallbackSince = Date.now();
    for (const sub of subs.values()) sub.snapshotReadAt = 0;
    metrics?.fallbackActive.set(1);
    emit('fallback', { reason, since: fallbackSince } satisfies FallbackEvent);
  }

  function leaveFallback(): void {
    if (fallbackSince === undefined) return;
    const fallbackMs = Date.now() - fallbackSince;
    fallbackSince = undefined;
    metrics?.fallbackActive.set(0);
    emit('recovered', { fallbackMs } satisfies RecoveredEvent);
  }

  async function run(): Promise<void> {
    let first = true;
    /** Consecutive failed polls. */
    let pollFailures = 0;
    /** Consecutive answers with a transient download failure. */
    let downloadFailures = 0;
    await cache?.sweep().catch((err: unknown) => reportError(fromGrpcError(err)));
    while (!stop.signal.aborted) {
      let delay: number;
      await loadCaches();
      try {
        // The first cycle (and the first after an outage) answers at once: ready() should not wait out a long-poll.
        const wait = first || pollFailures > 0 || waitMs === undefined ? 0 : waitMs;
        resubscribe = false;
        const polledAt = Date.now();
        const res = await pollOnce(wait);
        if (pollAnswerReceived.hasSubscribers && res !== undefined && res.updates.length > 0) pollAnswerReceived.publish(res);
        const recovering = pollFailures > 0 && res !== undefined;
        if (res !== undefined) {
          pollFailures = 0;
          leaveFallback();
        }
        // A long-poll that came back empty well before its wait (a draining service) must not
        // turn into a tight loop.
        const cutShort = wait > 0 && res !== undefined && res.updates.length === 0 && Date.now() - polledAt < wait / 2;
        const transient = res === undefined ? false : await handle(res);
        const suggested = res?.nextPollMs ?? 0;
        delay = resubscribe ? 0 : Math.max(waitMs !== undefined ? 0 : jitter(pollIntervalMs), suggested);
        // A download that failed for now: back off before asking again. (The service holds a
        // long-poll whose topics only err (unknown, denied) until its wait ends, so those
        // need no extra delay after a held poll; after an unheld one, wait a little.)
        if (transient) delay = Math.max(delay, backoffDelay(downloadFailures++, { baseMs: 500, maxMs: 30_000 }));
        else downloadFailures = 0;
        if (res !== undefined && res.updates.length === 0 && res.errors.length > 0) delay = Math.max(delay, jitter(wait > 0 ? 0 : Math.min(pollIntervalMs, 1000)));
        if (res === undefined && subs.size === 0) delay = Math.max(delay, 50);
        // Re-arming the long-poll after an update: spread the fleet's re-polls out (see the option).
        // (Whole ms: Node keeps one timer list per distinct duration, and a fractional random
        // duration made a new list, and a priority-queue insert, for every answer.)
        if (waitMs !== undefined && wait > 0 && res !== undefined && res.updates.length > 0 && !resubscribe) delay = Math.max(delay, Math.round((0.5 + Math.random()) * rearmAfterUpdateMs));
        // Re-arming the long-poll after an outage or a drain: spread the clients out.
        if ((cutShort || recovering) && !resubscribe && waitMs !== undefined) delay = Math.max(delay, Math.random() * rearmJitterMs);
      } catch (err) {
        const q = fromGrpcError(err);
        pollFailures++;
        metrics?.pollFailures.inc({ code: q.code });
        reportError(q);
        for (const s of subs.values()) s.report(q);
        if (isRetryable(q) && fallback !== undefined && pollFailures >= fallback.afterFailures) {
          enterFallback(q);
          await applySnapshots(fallback.refreshMs);
        }
        delay = isRetryable(q) ? backoffDelay(pollFailures - 1, reconnect) : jitter(waitMs !== undefined ? 1000 : pollIntervalMs);
      }
      if (first) {
        first = false;
        markReady();
      }
      // A new subscription or close() cuts the pause short (`wake`). One timer and one
      // function: this runs after every long-poll answer (an AbortController, its signal and
      // listeners per answer were ~8% of a subscriber process's CPU at 500 consumers).
      if (delay > 0 && !stop.signal.aborted) await pause(delay);
    }
  }

  /** Resolves after `ms`, or at once when `wake` is called. */
  function pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });
  }

  const consumer: Consumer = {
    subscribe<T = Uint8Array>(topic: string, subOptions: SubscribeOptions<T> = {}): Subscription<T> {
      const name = validateTopicName(topic, 'topic');
      if (subs.has(name)) throw QuireError.invalid('topic', `${name} is already subscribed`);
      const sub = new SubscriptionImpl<T>(name, subOptions);
      subs.set(name, sub as SubscriptionImpl<unknown>);
      metrics?.track(name);
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
      wake?.();
      inFlight?.cancel();
      streams?.close();
      markReady();
      await loop?.catch(() => {});
      pool.close();
      s3.close();
      metrics?.close();
    },
    usingFallback: () => fallbackSince !== undefined,
    endpoints: () => pool.health(),
    get metrics() {
      return metrics?.registry;
    },
    on(event: string, listener: (arg: never) => void) {
      emitter.on(event, listener as (...args: unknown[]) => void);
      return consumer;
    },
    getVersion: (topic, version) => history.getVersion(topic, version),
    listVersions: (topic, o) => history.listVersions(topic, o),
    versionAt: (topic, at) => history.versionAt(topic, at),
    download: async (topic, version) => {
      const d = await history.getVersion(topic, version);
      return decryptPayload(options.keyring, d, await history.bytesOf(d));
    },
    downloadTo: async (topic, version, path, o = {}) => {
      if (typeof path !== 'string' || path === '') throw QuireError.invalid('path', 'must be a file path');
      const d = await history.getVersion(topic, version);
      return history.saveTo(d, path, { ...o, transform: () => decryptingTransform(options.keyring, d) });
    },
  };
  return consumer;
}
