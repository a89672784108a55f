/**
 * The composition of the store adapters: the only place in the services that calls the
 * adapter factories. Each app's composition root (`createPublishApp`, `createConsumeApp`)
 * calls `createStores(config)`; so do the service-layer integration tests.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createFsBlobStore, createS3BlobStore } from '@quire/blob-store';
import type { BlobStore, MetadataStore } from '@quire/core';
import { createCassandraMetadataStore, createEmbeddedMetadataStore } from '@quire/metadata-store';
import type { ServiceConfig } from './config.ts';

export interface Stores {
  store: MetadataStore;
  blobs: BlobStore;
  close(): Promise<void>;
}

/** Build and initialise the metadata store (migrated) and the blob store (buckets made). */
export async function createStores(config: Pick<ServiceConfig, 'metadataStore' | 'blobStore'>): Promise<Stores> {
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
