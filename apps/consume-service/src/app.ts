/**
 * Composition root of the consume service: the only place that calls the adapter
 * factories. `createConsumeApp(config)` builds the stores, fills the topic cache (the
 * first full refresh must succeed), and starts REST and gRPC. `close()` answers every
 * held long-poll first (drain), then stops the servers, the cache, writes the last fleet
 * reports and closes the stores.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createFsBlobStore, createS3BlobStore } from '@quire/blob-store';
import { systemClock } from '@quire/core';
import type { BlobStore, Clock, MetadataStore } from '@quire/core';
import { createCassandraMetadataStore, createEmbeddedMetadataStore } from '@quire/metadata-store';
import { TopicCache } from './cache.ts';
import type { ConsumeConfig } from './config.ts';
import { ConsistencyChecker } from './consistency.ts';
import { createGrpcServer } from './grpc.ts';
import { createRestServer } from './rest.ts';
import { ConsumeService } from './service.ts';

export interface Stores {
  store: MetadataStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

/** Build and initialise the metadata store (migrated) and the blob store. */
export async function createStores(config: Pick<ConsumeConfig, 'metadataStore' | 'blobStore'>): Promise<Stores> {
  let store: MetadataStore;
  const ms = config.metadataStore;
  if (ms.kind === 'embedded') {
    mkdirSync(dirname(ms.path), { recursive: true });
    store = createEmbeddedMetadataStore({ path: ms.path });
  } else {
    store = createCassandraMetadataStore({
      contactPoints: ms.contactPoints,
      port: ms.port,
      localDataCenter: ms.localDataCenter,
      keyspace: ms.keyspace,
      replication: { class: 'NetworkTopologyStrategy', dataCenters: { [ms.localDataCenter]: ms.replicationFactor } },
    });
  }
  let blobs: BlobStore;
  let destroyBlobs = (): void => {};
  if (config.blobStore.kind === 'fs') {
    blobs = createFsBlobStore({ regions: config.blobStore.regions });
  } else {
    const s3 = createS3BlobStore({ regions: config.blobStore.regions });
    blobs = s3;
    destroyBlobs = () => s3.destroy();
  }
  try {
    await store.migrate();
    await blobs.init();
  } catch (err) {
    await store.close().catch(() => {});
    destroyBlobs();
    throw err;
  }
  return {
    store,
    blobs,
    async close() {
      destroyBlobs();
      await store.close();
    },
  };
}

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
  const service = new ConsumeService({ cache, checker, store, clock, ...(options.fleetFlushMs === undefined ? {} : { fleetFlushMs: options.fleetFlushMs }), onError });
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

export interface ConsumeApp {
  /** `http://host:port` of the REST API. */
  httpUrl: string;
  /** `host:port` of the gRPC server. */
  grpcAddress: string;
  service: ConsumeService;
  close(): Promise<void>;
}

export interface ConsumeAppOptions {
  clock?: Clock;
}

export async function createConsumeApp(config: ConsumeConfig, options: ConsumeAppOptions = {}): Promise<ConsumeApp> {
  const stores = await createStores(config);
  const rest0Logger = config.logLevel === 'silent' ? false : { level: config.logLevel };
  let core: ConsumeCore;
  try {
    core = await createConsumeCore(stores.store, stores.blobs, {
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      cacheRefreshMs: config.cacheRefreshMs,
      changePollMs: config.changePollMs,
      fleetFlushMs: config.fleetFlushMs,
      onError: (err, what) => {
        if (config.logLevel !== 'silent') process.stderr.write(`quire consume-service: ${what}: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    });
  } catch (err) {
    await stores.close();
    throw err;
  }
  const rest = await createRestServer(core.service, core.cache, { logger: rest0Logger });
  const grpcServer = createGrpcServer(core.service, { onError: (err, method) => rest.log.error({ err, method }, 'grpc call failed') });
  let httpUrl: string;
  let grpcAddress: string;
  try {
    await rest.listen({ host: config.host, port: config.httpPort });
    const addr = rest.server.address();
    const httpPort = typeof addr === 'object' && addr !== null ? addr.port : config.httpPort;
    const grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync(`${config.host}:${config.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    httpUrl = `http://${host}:${httpPort}`;
    grpcAddress = `${host}:${grpcPort}`;
  } catch (err) {
    grpcServer.forceShutdown();
    await rest.close();
    await core.close();
    await stores.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    httpUrl,
    grpcAddress,
    service: core.service,
    close() {
      closing ??= (async () => {
        // Answer held long-polls first, so the servers' graceful close does not wait on them.
        core.service.drain();
        // Sockets still open after a grace period are cut.
        const cut = setTimeout(() => rest.server.closeAllConnections(), 5000);
        cut.unref();
        await Promise.all([
          rest.close().finally(() => clearTimeout(cut)),
          new Promise<void>((resolve) => {
            grpcServer.tryShutdown(() => resolve());
            setTimeout(() => grpcServer.forceShutdown(), 5000).unref();
          }),
        ]);
        await core.close();
        await stores.close();
      })();
      return closing;
    },
  };
}
