/**
 * Instrumentation that wraps what a service already has, so the service code only gains
 * one hook line per object: the stores (errors by adapter and operation), the publish
 * calls (count, latency, bytes), the polls (in flight, latency, updates), the consistency
 * checker (failures by reason), and scrape-time gauges over state others hold.
 *
 * Wrapping keeps `this` (private fields included): a method `m` of `target` becomes an
 * own property calling the original with the same receiver and arguments.
 */
import { Code, QuireError, type BlobStore, type MetadataStore } from '@quire/core';
import { Counter } from 'prom-client';
import { consistencyMetrics, pollMetrics, publishMetrics, type QuireMetrics } from './metrics.ts';

/** Codes a store adapter answers with that are answers, not failures of the store (see `MetadataStore`). */
const ANSWER_CODES = new Set<string>([Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.ALREADY_EXISTS, Code.FAILED_PRECONDITION, Code.ABORTED]);

/** The error's code when it is a failure of the dependency itself (unreachable, timeout, internal), else undefined. */
export function failureCode(err: unknown): string | undefined {
  if (err instanceof QuireError) return ANSWER_CODES.has(err.code) ? undefined : err.code;
  return 'UNKNOWN';
}

/**
 * A proxy of `target` whose async methods count their failures (`failureCode`) in
 * `counter` with `{ adapter, operation, code }`. Everything else passes through.
 */
export function countFailures<T extends object>(target: T, adapter: string, counter: QuireMetrics['storeErrors']): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
      let fn = wrapped.get(prop);
      if (fn === undefined) {
        const original = value as (...args: unknown[]) => unknown;
        fn = function (this: unknown, ...args: unknown[]): unknown {
          const count = (err: unknown): never => {
            const code = failureCode(err);
            if (code !== undefined) counter.inc({ adapter, operation: prop, code });
            throw err;
          };
          let result: unknown;
          try {
            result = original.apply(obj, args);
          } catch (err) {
            return count(err);
          }
          return result instanceof Promise ? result.catch(count) : result;
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}

export interface StoresLike {
  store: MetadataStore;
  blobs: BlobStore;
}

/**
 * The same stores, counting their failures: the metadata store's under
 * `quire_metadata_store_errors_total`, the blob store's under `quire_blob_store_errors_total`,
 * labelled with the configured adapter kinds (`cassandra` | `embedded`, `s3` | `fs`).
 */
export function instrumentStores<S extends StoresLike>(
  stores: S,
  metrics: QuireMetrics,
  config: { metadataStore: { kind: string }; blobStore: { kind: string } },
): S {
  return {
    ...stores,
    store: countFailures(stores.store, config.metadataStore.kind, metrics.storeErrors),
    blobs: countFailures(stores.blobs, config.blobStore.kind, metrics.blobErrors),
    close: (stores as { close?: () => Promise<void> }).close?.bind(stores),
  } as S;
}

type Method = (...args: never[]) => unknown;

/** Replace `target[name]` by `wrap(original)` (bound to target). */
function wrapMethod<T extends object, K extends keyof T>(target: T, name: K, wrap: (original: T[K] & Method) => T[K]): void {
  const original = (target[name] as T[K] & Method).bind(target) as T[K] & Method;
  Object.defineProperty(target, name, { value: wrap(original), configurable: true, writable: true, enumerable: false });
}

/** What a publish call answers, as far as the metrics care. */
interface PublishLike {
  replayed?: boolean;
  version?: { size?: number };
}

/** Count the publish calls `methods` of `service` (count, latency, bytes of created versions). */
export function instrumentPublishes<T extends object>(service: T, m: QuireMetrics, methods: ReadonlyArray<keyof T>): void {
  const metrics = publishMetrics(m);
  for (const outcome of ['created', 'replayed', 'failed']) {
    metrics.publishes.inc({ outcome }, 0);
    metrics.publishDuration.zero({ outcome });
  }
  for (const name of methods) {
    wrapMethod(service, name, (original) =>
      (async (...args: never[]) => {
        const end = metrics.publishDuration.startTimer();
        try {
          const res = (await original(...args)) as PublishLike;
          const outcome = res.replayed === true ? 'replayed' : 'created';
          end({ outcome });
          metrics.publishes.inc({ outcome });
          if (outcome === 'created' && typeof res.version?.size === 'number') metrics.publishBytes.inc(res.version.size);
          return res;
        } catch (err) {
          end({ outcome: 'failed' });
          metrics.publishes.inc({ outcome: 'failed' });
          throw err;
        }
      }) as never,
    );
  }
}

/** A poll's callback (`ConsumeService.pollInto`): the answer, or the error with no answer. */
type PollDone = (ctx: unknown, result: { updates: readonly unknown[] } | undefined, err?: unknown) => void;

interface PollService {
  /** The one poll entry point (`poll`, the promise form, calls it): answers through `done(ctx, …)`. */
  pollInto(input: never, signal: unknown, done: PollDone, ctx: unknown): void;
  readonly heldPolls: number;
}

function pollEnded(metrics: ReturnType<typeof pollMetrics>, kind: { kind: string }, started: number): void {
  metrics.pollDuration.observe(kind, (performance.now() - started) / 1000);
  metrics.pollsInFlight.dec(kind);
}

/** Count polls (in flight, latency, updates handed out) and expose the held long-polls. */
export function instrumentPolls(service: PollService, m: QuireMetrics): void {
  const metrics = pollMetrics(m);
  // Label objects made once; one small record per poll carries the caller's callback to one
  // shared callback (no closure, promise or suspended frame per poll: a held long-poll keeps
  // what it allocates until answered).
  const byKind = {
    poll: { kind: { kind: 'poll' }, ok: { kind: 'poll', outcome: 'ok' }, failed: { kind: 'poll', outcome: 'failed' } },
    long: { kind: { kind: 'long' }, ok: { kind: 'long', outcome: 'ok' }, failed: { kind: 'long', outcome: 'failed' } },
  } as const;
  interface Counted {
    done: PollDone;
    ctx: unknown;
    labels: (typeof byKind)['poll' | 'long'];
    started: number;
    ended: boolean;
  }
  const counted = (c: Counted, result: { updates: readonly unknown[] } | undefined, err?: unknown): void => {
    if (c.ended) return;
    c.ended = true;
    if (result === undefined) metrics.polls.inc(c.labels.failed);
    else {
      metrics.polls.inc(c.labels.ok);
      metrics.pollUpdates.inc(result.updates.length);
    }
    pollEnded(metrics, c.labels.kind, c.started);
    c.done(c.ctx, result, err);
  };
  wrapMethod(service, 'pollInto', (original) => (input: never, signal: unknown, done: PollDone, ctx: unknown): void => {
    const waitMs = (input as { waitMs?: unknown } | undefined)?.waitMs;
    const labels = typeof waitMs === 'number' && waitMs > 0 ? byKind.long : byKind.poll;
    metrics.pollsInFlight.inc(labels.kind);
    const c: Counted = { done, ctx, labels, started: performance.now(), ended: false };
    try {
      original(input, signal, counted as PollDone, c);
    } catch (err) {
      // A poll method that throws instead of calling back: a failure all the same, counted.
      if (!c.ended) counted(c, undefined, err);
      else throw err;
    }
  });
  for (const kind of ['poll', 'long']) {
    metrics.pollsInFlight.set({ kind }, 0);
    metrics.pollDuration.zero({ kind });
    for (const outcome of ['ok', 'failed']) metrics.polls.inc({ kind, outcome }, 0);
  }
  m.gauge('quire_long_polls_held', 'Long-polls held now, waiting for a change', () => service.heldPolls);
}

interface Checker {
  check(v: never, region: string | undefined): Promise<{ ok: boolean; reason?: string }>;
}

/** A bounded label for a consistency failure reason (the reason itself names versions and sizes). */
export function reasonLabel(reason: string | undefined): string {
  const r = reason ?? '';
  if (r.startsWith('deleted')) return 'deleted';
  if (r.startsWith('metadata missing')) return 'metadata_missing';
  if (r.startsWith('inline data missing')) return 'inline_missing';
  if (r.includes('checksum')) return 'checksum_mismatch';
  if (r.startsWith('inline data is') || / is \d+ bytes, expected/.test(r)) return 'size_mismatch';
  if (r.startsWith('no location')) return 'no_location';
  if (r.startsWith('object missing')) return 'object_missing';
  if (r.startsWith('check failed')) return 'check_error';
  return 'other';
}

/**
 * Count the consistency checks that fail. The checker answers repeated checks from its
 * results (the same promise): only a check that really ran is counted, once.
 */
export function instrumentConsistency(checker: Checker, m: QuireMetrics): void {
  const failures = consistencyMetrics(m);
  const seen = new WeakSet<Promise<unknown>>();
  wrapMethod(checker, 'check', (original) =>
    ((v: never, region: string | undefined) => {
      const p = original(v, region);
      if (!seen.has(p)) {
        seen.add(p);
        void p.then((r) => {
          // A deleted version is refused before any check runs (not a consistency failure).
          if (!r.ok && r.reason !== 'deleted') failures.inc({ reason: reasonLabel(r.reason) });
        }, () => {});
      }
      return p;
    }) as never,
  );
}

/** Scrape-time gauges of the consume service's topic cache. */
export function trackCache(cache: { health(): { stale: boolean; ageMs: number | undefined; topics: number } }, metrics: QuireMetrics): void {
  metrics.gauge('quire_cache_refresh_age_seconds', 'Seconds since the topic cache last refreshed fully from the metadata store', () => {
    const age = cache.health().ageMs;
    return age === undefined ? undefined : age / 1000;
  });
  metrics.gauge('quire_cache_stale', '1 when the topic cache is stale (no successful refresh for too long), else 0', () => (cache.health().stale ? 1 : 0));
  metrics.gauge('quire_cache_topics', 'Topics held in the cache', () => cache.health().topics);
}

/** Scrape-time gauge of the inline payload bytes the consume service's consistency checker holds in memory. */
export function trackInlineCache(checker: { readonly inlineBytes: number }, metrics: QuireMetrics): void {
  metrics.gauge('quire_inline_cache_bytes', 'Bytes of inline payloads held in memory for polls (bounded, least recently used out first)', () => checker.inlineBytes);
}

/** Scrape-time gauge of the scheduler's leadership (1 = this replica leads). */
export function trackLeadership(scheduler: { readonly isLeader: boolean }, metrics: QuireMetrics): void {
  metrics.gauge('quire_scheduler_leader', '1 when this replica holds the scheduler lease (leads rollouts, snapshots, retention), else 0', () =>
    scheduler.isLeader ? 1 : 0,
  );
}

/** Scrape-time gauge of the active rollout runs by status (running, paused), read from the store. */
export function trackRollouts(source: { listActiveRuns(): Promise<ReadonlyArray<{ status: string }>> }, metrics: QuireMetrics): void {
  metrics.labelledGauge('quire_rollouts_active', 'Rollout runs not finished, by status (running, paused)', 'status', async () => {
    const out: Record<string, number> = { running: 0, paused: 0 };
    for (const run of await source.listActiveRuns()) out[run.status] = (out[run.status] ?? 0) + 1;
    return out;
  });
}

/** A total someone else counts, exposed as a counter read at scrape time. */
function scrapedCounter(metrics: QuireMetrics, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [metrics.registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** Publish side of the change hints (ADR 0009): watchers now, hints sent. */
export function trackChangeHints(hints: { readonly watchers: number; readonly sent: number }, metrics: QuireMetrics): void {
  metrics.gauge('quire_change_hint_watchers', 'Change-hint streams (consume replicas) this publish replica is sending to now', () => hints.watchers);
  scrapedCounter(metrics, 'quire_change_hints_sent_total', 'Change hints sent to watchers (one per change and watcher)', () => hints.sent);
}

/** Consume side of the change hints (ADR 0009): streams connected now, hints received. */
export function trackHintWatch(watch: { readonly connected: number; readonly received: number }, metrics: QuireMetrics): void {
  metrics.gauge('quire_change_hint_streams_connected', 'Change-hint streams open to publish replicas now', () => watch.connected);
  scrapedCounter(metrics, 'quire_change_hints_received_total', 'Change hints received from publish replicas (each wakes a change-feed read)', () => watch.received);
}
