/**
 * The composition of the store adapters: the only place in the services that calls the
 * adapter factories. Each app's composition root (`createPublishApp`, `createConsumeApp`)
 * calls `createStores(config)`; so do the service-layer integration tests.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createFsBlobStore, createS3BlobStore } from '@quire/blob-store';
import { Code, QuireError, type BlobStore, type MetadataStore } from '@quire/core';
import { createCassandraMetadataStore, createEmbeddedMetadataStore } from '@quire/metadata-store';
import type { ServiceConfig } from './config.ts';

export interface Stores {
  store: MetadataStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

export interface CreateStoresOptions {
  /**
   * A blob region that cannot be reached at start (UNAVAILABLE) does not stop the service:
   * this is called, and the buckets are made in the background every `blobInitRetryMs`
   * (default 5000) until it works. Default: a warning on stderr.
   */
  onBlobInitUnavailable?: (err: QuireError) => void;
  blobInitRetryMs?: number;
}

/**
 * Build and initialise the metadata store (migrated) and the blob store (buckets made). An
 * S3 region down at start is not fatal (a service starting matters more: the other regions
 * work, and the SDK reads them in turn); any other failure is.
 */
export async function createStores(config: Pick<ServiceConfig, 'metadataStore' | 'blobStore'>, options: CreateStoresOptions = {}): Promise<Stores> {
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
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  const initLater = (): void => {
    retry = setTimeout(() => {
      blobs.init().then(
        () => (retry = undefined),
        () => {
          if (!closed) initLater();
        },
      );
    }, options.blobInitRetryMs ?? 5000);
    retry.unref();
  };
  try {
    await store.migrate();
    try {
      await blobs.init();
    } catch (err) {
      if (!(err instanceof QuireError) || err.code !== Code.UNAVAILABLE) throw err;
      (options.onBlobInitUnavailable ?? ((e) => process.stderr.write(`quire: blob store: ${e.message}; starting anyway, buckets made when it is back\n`)))(err);
      initLater();
    }
  } catch (err) {
    await store.close().catch(() => {});
    destroyBlobs();
    throw err;
  }
  return {
    store,
    blobs,
    async close() {
      closed = true;
      clearTimeout(retry);
      destroyBlobs();
      await store.close();
    },
  };
}
