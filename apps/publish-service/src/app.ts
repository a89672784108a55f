/**
 * Composition root of the publish service: the only place that calls the adapter
 * factories. `createPublishApp(config)` builds the stores and the service and starts
 * REST and gRPC; `createStores(config)` is the store half, for tests of the service layer.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createFsBlobStore, createS3BlobStore } from '@quire/blob-store';
import { systemClock } from '@quire/core';
import type { BlobStore, Clock, MetadataStore } from '@quire/core';
import { createCassandraMetadataStore, createEmbeddedMetadataStore } from '@quire/metadata-store';
import type { PublishConfig } from './config.ts';
import { createGrpcServer } from './grpc.ts';
import { createRestServer } from './rest.ts';
import { PublishService } from './service.ts';

export interface Stores {
  store: MetadataStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

/** Build and initialise the metadata store (migrated) and the blob store (buckets made). */
export async function createStores(config: Pick<PublishConfig, 'metadataStore' | 'blobStore'>): Promise<Stores> {
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

export interface PublishApp {
  /** `http://host:port` of the REST API. */
  httpUrl: string;
  /** `host:port` of the gRPC server. */
  grpcAddress: string;
  service: PublishService;
  close(): Promise<void>;
}

export interface PublishAppOptions {
  clock?: Clock;
}

export async function createPublishApp(config: PublishConfig, options: PublishAppOptions = {}): Promise<PublishApp> {
  const stores = await createStores(config);
  const service = new PublishService({ store: stores.store, blobs: stores.blobs, clock: options.clock ?? systemClock });
  const rest = await createRestServer(service, {
    bodyLimit: config.httpBodyLimitBytes,
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
  });
  const grpcServer = createGrpcServer(service, {
    onError: (err, method) => rest.log.error({ err, method }, 'grpc call failed'),
  });
  let httpUrl: string;
  let grpcAddress: string;
  try {
    await rest.listen({ host: config.host, port: config.httpPort });
    const addr = rest.server.address();
    const httpPort = typeof addr === 'object' && addr !== null ? addr.port : config.httpPort;
    const grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync(`${config.host}:${config.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    httpUrl = `http://${host}:${httpPort}`;
    grpcAddress = `${host}:${grpcPort}`;
  } catch (err) {
    grpcServer.forceShutdown();
    await rest.close();
    await stores.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    httpUrl,
    grpcAddress,
    service,
    close() {
      closing ??= (async () => {
        await Promise.all([
          rest.close(),
          new Promise<void>((resolve) => {
            grpcServer.tryShutdown(() => resolve());
            // Calls still open after a grace period are cut.
            setTimeout(() => grpcServer.forceShutdown(), 5000).unref();
          }),
        ]);
        await stores.close();
      })();
      return closing;
    },
  };
}
