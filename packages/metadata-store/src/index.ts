// Public surface of @quire/metadata-store. The contract suite is a separate entry point
// (`@quire/metadata-store/contract`) because it imports vitest.
export { createEmbeddedMetadataStore } from './embedded/store.ts';
export type { EmbeddedMetadataStoreOptions } from './embedded/store.ts';
export type { MetadataStoreFaults } from './faults.ts';
export { createCassandraMetadataStore } from './cassandra/store.ts';
export type { CassandraMetadataStoreOptions } from './cassandra/store.ts';
