/**
 * Composition root of the publish service. `createPublishApp(config)` builds the stores
 * (through `@quire/service-kit`'s `createStores`, the only caller of the adapter
 * factories) and the service, and starts REST and gRPC.
 */
import { systemClock } from '@quire/core';
import type { Clock } from '@quire/core';
import { blobChecks, createMetrics, grpcCallMetrics, instrumentPublishes, instrumentStores, observe, storeCheck, trackChangeHints, trackLeadership, trackRollouts, type QuireMetrics } from '@quire/observability';
import { createAccessGuard, createStores, fastifyLogger, listenTransports, type RunningService } from '@quire/service-kit';
import { guardPublishHandlers, installPublishAuth } from './auth.ts';
import type { PublishConfig } from './config.ts';
import { registerAdminRoutes } from './admin-routes.ts';
import { createGrpcServer } from './grpc.ts';
import { ChangeHints, addChangeHintService, hintingStore } from './hints.ts';
import { rolloutGrpcHandlers } from './grpc-rollouts.ts';
import { createRestServer } from './rest.ts';
import { registerRolloutRoutes } from './rollout-routes.ts';
import { RolloutService } from './rollouts.ts';
import { Scheduler } from './scheduler.ts';
import { PublishService } from './service.ts';
import { SnapshotWriter } from './snapshots.ts';
import { OrphanSweeper } from './sweep.ts';

// The store half, for tests of the service layer (built by the kit, as in every service).
export { createStores };
export type { Stores } from '@quire/service-kit';

/** The running service: where REST and gRPC listen, the service itself, and `close()`. */
export interface PublishApp extends RunningService {
  service: PublishService;
  rollouts: RolloutService;
  scheduler: Scheduler;
  metrics: QuireMetrics;
}

export interface PublishAppOptions {
  clock?: Clock;
}

export async function createPublishApp(config: PublishConfig, options: PublishAppOptions = {}): Promise<PublishApp> {
  const metrics = createMetrics('publish');
  // Every change-recording write hints the consume services (hints.ts, ADR 0009).
  const hints = new ChangeHints(config.replicaId);
  const instrumented = instrumentStores(await createStores(config), metrics, config);
  const stores = { ...instrumented, store: hintingStore(instrumented.store, hints) };
  const clock = options.clock ?? systemClock;
  const rollouts = new RolloutService({ store: stores.store, clock });
  const onPublished = (record: { topic: string; version: number }, actor: string) => rollouts.startForPublish(record.topic, record.version, actor);
  const service = new PublishService({ store: stores.store, blobs: stores.blobs, clock, onPublished });
  instrumentPublishes(service, metrics, ['publish', 'registerExisting']);
  const rest = await createRestServer(service, { bodyLimit: config.httpBodyLimitBytes, logger: fastifyLogger(config.logLevel) });
  const onError = (err: unknown, method: string) => rest.log.error({ err, method }, 'grpc call failed');
  const guard = createAccessGuard(config.auth, stores.store, (err, what) => rest.log.warn({ err }, what));
  const grpcServer = createGrpcServer(service, {
    onError,
    extraHandlers: rolloutGrpcHandlers(rollouts, onError),
    wrapHandlers: guardPublishHandlers(guard),
    interceptors: [grpcCallMetrics(metrics)],
  });
  installPublishAuth(rest, grpcServer, { store: stores.store, guard, clock, onError });
  addChangeHintService(grpcServer, hints, guard, (event, watcher) => rest.log.debug({ watcher }, `change hints: watcher ${event}`));
  trackChangeHints(hints, metrics);
  const scheduler = new Scheduler({
    store: stores.store,
    rollouts,
    snapshots: new SnapshotWriter({ store: stores.store, blobs: stores.blobs, clock }),
    retention: service,
    clock,
    replicaId: config.replicaId,
    tickMs: config.schedulerTickMs,
    leaseTtlMs: config.leaseTtlMs,
    snapshotEveryMs: config.snapshotEveryMs,
    sweeper: new OrphanSweeper({ store: stores.store, blobs: stores.blobs, clock, graceMs: config.orphanGraceMs }),
    sweepEveryMs: config.orphanSweepEveryMs,
    onSweep: (r) => {
      if (r.deleted.length > 0 || r.failures.length > 0) rest.log.info({ deleted: r.deleted, failures: r.failures.length }, 'scheduler: orphan sweep');
    },
    onError: (err, what) => rest.log.warn({ err }, `scheduler: ${what}`),
    onLeadership: (leader, lease) => rest.log.info({ epoch: lease?.epoch, replicaId: config.replicaId }, leader ? 'scheduler: leading' : 'scheduler: lost the lead'),
  });
  await registerRolloutRoutes(rest, { rollouts, scheduler });
  trackLeadership(scheduler, metrics);
  trackRollouts(stores.store, metrics);
  const observed = observe({
    metrics,
    rest,
    grpcServer,
    grpcServices: ['quire.v1.PublishService'],
    protoFiles: ['quire/v1/publish.proto'],
    checks: [storeCheck(stores.store), ...blobChecks(stores.blobs)],
  });
  await registerAdminRoutes(rest, { store: stores.store, clock });
  const transports = await listenTransports(rest, grpcServer, {
    host: config.host,
    httpPort: config.httpPort,
    grpcPort: config.grpcPort,
    // End the hint streams so the gRPC server's graceful close does not wait on them.
    drain: () => hints.close(),
    release: async () => {
      observed.stop();
      await scheduler.stop();
      await stores.close();
    },
  });
  scheduler.start();
  observed.start();
  return { ...transports, service, rollouts, scheduler, metrics };
}
