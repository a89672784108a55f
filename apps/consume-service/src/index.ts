// Public surface of @quire/consume-service (for the quickstart and end-to-end tests).
export { createConsumeApp, createConsumeCore, createStores } from './app.ts';
export type { ConsumeApp, ConsumeAppOptions, ConsumeCore, ConsumeCoreOptions, Stores } from './app.ts';
export { CONFIG_VARIABLES, ConfigError, loadConfig } from './config.ts';
export type { BlobStoreConfig, ConsumeConfig, MetadataStoreConfig, S3RegionConfig } from './config.ts';
export { ConsumeService, LIMITS } from './service.ts';
export type { PollInput, PollResult, ReadInlineResult, TopicStatus, TopicUpdate, VersionView } from './service.ts';
export { TopicCache } from './cache.ts';
export type { TopicState } from './cache.ts';
export { ConsistencyChecker } from './consistency.ts';
export { WaiterRegistry } from './waiters.ts';
export { CODE_TRAILER, FIELD_TRAILER } from '@quire/service-kit';
export type { ErrorBody } from '@quire/service-kit';
