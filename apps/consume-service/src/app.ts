/**
 * Composition root of the consume service. `createConsumeApp(config)` builds the stores
 * (through `@quire/service-kit`'s `createStores`, the only caller of the adapter
 * factories), fills the topic cache (the first full refresh must succeed), and starts
 * REST and gRPC. `close()` answers every held long-poll first (drain), then stops the
 * servers, the cache, writes the last fleet reports and closes the stores.
 */
import { systemClock } from '@quire/core';
import type { BlobStore, Clock, MetadataStore } from '@quire/core';
import { blobChecks, createMetrics, grpcCallMetrics, instrumentConsistency, instrumentPolls, instrumentStores, observe, storeCheck, trackCache, trackHintWatch, trackInlineCache, type QuireMetrics } from '@quire/observability';
import { createAccessGuard, createStores, fastifyLogger, listenTransports, type RunningService } from '@quire/service-kit';
import { guardConsumeHandlers, installConsumeAuth } from './auth.ts';
import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import { TopicCache } from './cache.ts';
import { HintWatch } from './hints.ts';
import { hintReceived } from './diagnostics.ts';
import type { ConsumeConfig } from './config.ts';
import { ConsistencyChecker } from './consistency.ts';
import { createGrpcServer } from './grpc.ts';
import { createRestServer } from './rest.ts';
import type { AppLimitsOptions } from './limiter.ts';
import { ConsumeService } from './service.ts';

// The store half, for tests of the service layer (built by the kit, as in every service).
export { createStores };
export type { Stores } from '@quire/service-kit';

export interface ConsumeCore {
  cache: TopicCache;
  checker: ConsistencyChecker;
  service: ConsumeService;
  /** Drain held polls, stop the cache, flush fleet reports (the stores stay open). */
  close(): Promise<void>;
}

export interface ConsumeCoreOptions {
  clock?: Clock;
  cacheRefreshMs?: number;
  changePollMs?: number;
  fleetFlushMs?: number;
  recheckMs?: number;
  /** Per-application poll limits (limiter.ts). */
  limits?: AppLimitsOptions;
  onError?: (err: unknown, what: string) => void;
}

/** Cache + checker + service over given stores (the app uses it; so do the service tests). */
export async function createConsumeCore(store: MetadataStore, blobs: BlobStore, options: ConsumeCoreOptions = {}): Promise<ConsumeCore> {
  const clock = options.clock ?? systemClock;
  const onError = options.onError ?? (() => {});
  const cache = new TopicCache({
    store,
    clock,
    ...(options.cacheRefreshMs === undefined ? {} : { refreshMs: options.cacheRefreshMs }),
    ...(options.changePollMs === undefined ? {} : { changePollMs: options.changePollMs }),
    onError,
  });
  const checker = new ConsistencyChecker({ store, blobs, clock, ...(options.recheckMs === undefined ? {} : { recheckMs: options.recheckMs }), onError });
  const service = new ConsumeService({ cache, checker, store, blobs, clock, ...(options.fleetFlushMs === undefined ? {} : { fleetFlushMs: options.fleetFlushMs }), ...(options.limits === undefined ? {} : { limits: options.limits }), onError });
  try {
    await cache.start();
  } catch (err) {
    await service.close().catch(() => {});
    throw err;
  }
  return {
    cache,
    checker,
    service,
    async close() {
      service.drain();
      await cache.stop();
      await service.close();
    },
  };
}

/** The running service: where REST and gRPC listen, the service itself, and `close()`. */
export interface ConsumeApp extends RunningService {
  service: ConsumeService;
  metrics: QuireMetrics;
}

export interface ConsumeAppOptions {
  clock?: Clock;
}

export async function createConsumeApp(config: ConsumeConfig, options: ConsumeAppOptions = {}): Promise<ConsumeApp> {
  const metrics = createMetrics('consume');
  const stores = instrumentStores(await createStores(config), metrics, config);
  // Background errors (cache refresh, checks, fleet reports): plain stderr until the REST
  // server's logger exists, then JSON lines through it.
  let logError = (err: unknown, what: string): void => {
    if (config.logLevel !== 'silent') process.stderr.write(`quire consume-service: ${what}: ${err instanceof Error ? err.message : String(err)}\n`);
  };
  let core: ConsumeCore;
  try {
    core = await createConsumeCore(stores.store, stores.blobs, {
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      cacheRefreshMs: config.cacheRefreshMs,
      changePollMs: config.changePollMs,
      fleetFlushMs: config.fleetFlushMs,
      limits: {
        ...(config.pollConcurrencyPerApp === undefined ? {} : { concurrency: config.pollConcurrencyPerApp }),
        ...(config.pollQueuePerApp === undefined ? {} : { queue: config.pollQueuePerApp }),
        ...(config.heldPollsPerApp === undefined ? {} : { maxHeld: config.heldPollsPerApp }),
      },
      onError: (err, what) => logError(err, what),
    });
  } catch (err) {
    await stores.close();
    throw err;
  }
  instrumentPolls(core.service, metrics);
  instrumentConsistency(core.checker, metrics);
  trackCache(core.cache, metrics);
  trackInlineCache(core.checker, metrics);
  const rest = await createRestServer(core.service, core.cache, { logger: fastifyLogger(config.logLevel) });
  logError = (err, what) => rest.log.warn({ err }, what);
  // Change hints (ADR 0009): a publish replica's commit wakes the change-feed read at once
  // and reloads the hinted topic alongside it.
  const hints = (config.publishHintEndpoints ?? []).length === 0 ? undefined : watchHints(config, core.cache, rest.log);
  if (hints !== undefined) trackHintWatch(hints, metrics);
  const onGrpcError = (err: unknown, method: string) => rest.log.error({ err, method }, 'grpc call failed');
  const guard = createAccessGuard(config.auth, stores.store, (err, what) => rest.log.warn({ err }, what));
  installConsumeAuth(rest, guard);
  const grpcServer = createGrpcServer(core.service, {
    onError: onGrpcError,
    wrapHandlers: guardConsumeHandlers(guard, onGrpcError),
    interceptors: [grpcCallMetrics(metrics)],
  });
  const maxAgeMs = config.readyMaxCacheAgeMs ?? 300_000;
  // Time since the cache was last in step with the store (a full refresh or a change poll).
  const cacheAgeMs = (): number => core.cache.cacheAgeMs ?? Infinity;
  const observed = observe({
    metrics,
    rest,
    grpcServer,
    grpcServices: ['quire.v1.ConsumeService'],
    protoFiles: ['quire/v1/consume.proto'],
    checks: [
      // Polls are answered from the cache: with the store down the instance stays ready
      // (store "degraded") while the cache is young enough.
      storeCheck(stores.store, { degradedWhile: () => cacheAgeMs() <= maxAgeMs }),
      {
        name: 'cache',
        probe: async () => {},
        condition: () => (cacheAgeMs() <= maxAgeMs ? undefined : `not in step with the store for over ${maxAgeMs} ms`),
        details: () => ({ ageMs: Number.isFinite(cacheAgeMs()) ? cacheAgeMs() : null, topics: core.cache.size }),
      },
      ...blobChecks(stores.blobs),
    ],
  });
  const transports = await listenTransports(rest, grpcServer, {
    host: config.host,
    httpPort: config.httpPort,
    grpcPort: config.grpcPort,
    // Answer held long-polls first, so the servers' graceful close does not wait on them.
    drain: () => {
      observed.stop();
      hints?.stop();
      core.service.drain();
    },
    release: async () => {
      await core.close();
      await stores.close();
    },
  });
  observed.start();
  await hints?.start();
  return { ...transports, service: core.service, metrics };
}

/** The hint streams of this replica: every hint wakes the cache's change-feed read and reloads its topic. */
function watchHints(config: ConsumeConfig, cache: TopicCache, log: FastifyBaseLogger): HintWatch {
  return new HintWatch({
    endpoints: config.publishHintEndpoints ?? [],
    ...(config.publishHintToken === undefined ? {} : { token: config.publishHintToken }),
    watcher: `${hostname()}-${process.pid}`,
    onHint: (hint) => {
      if (hintReceived.hasSubscribers) hintReceived.publish({ topic: hint.topic });
      cache.hint(hint.topic);
      log.debug({ topic: hint.topic, replica: hint.replica, lagMs: Date.now() - hint.at }, 'change hint');
    },
    onState: (address, connected) => log.info({ address }, connected ? 'change hints: stream open' : 'change hints: stream closed'),
    onError: (err, what) => log.warn({ err }, what),
  });
}
