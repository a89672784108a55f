// Public surface of @quire/publish-service (for the quickstart and end-to-end tests).
export { createPublishApp, createStores } from './app.ts';
export { bootstrapAdminToken } from './auth.ts';
export { localHintToken } from './hints.ts';
export type { PublishApp, PublishAppOptions, Stores } from './app.ts';
export { CONFIG_VARIABLES, ConfigError, loadConfig } from './config.ts';
export type { BlobStoreConfig, MetadataStoreConfig, PublishConfig, S3RegionConfig } from './config.ts';
export { PublishService } from './service.ts';
export type { PublishInput, PublishResult, RegisterInput, TopicSettings, TopicView } from './service.ts';
export { ACTOR_HEADER, ACTOR_HEADER as ACTOR_METADATA } from '@quire/service-kit';
export { CODE_TRAILER, FIELD_TRAILER } from '@quire/service-kit';
export type { ErrorBody } from '@quire/service-kit';
export { RolloutService } from './rollouts.ts';
export type { RolloutControl, RolloutServiceOptions } from './rollouts.ts';
export { SCHEDULER_LEASE, Scheduler } from './scheduler.ts';
export type { SchedulerOptions, SchedulerStatus } from './scheduler.ts';
export { SnapshotWriter } from './snapshots.ts';
export { OrphanSweeper } from './sweep.ts';
export type { OrphanSweepOptions, SweepResult } from './sweep.ts';
