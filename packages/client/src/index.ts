// Public surface of @quire/client: the publisher, the consumer and the types they speak.
export { createPublisher, ACTOR_METADATA, CHUNK_BYTES } from './publisher.ts';
export type { ListAuditOptions, Publisher, PublisherOptions, PublishInput, PublishProgress, RegisterInput, RolloutControl, TopicInput } from './publisher.ts';
export { createConsumer } from './consumer.ts';
export type {
  Consumer,
  ConsumerIdentityInput,
  ConsumerOptions,
  EndpointHealthEvent,
  FallbackEvent,
  FallbackOptions,
  RecoveredEvent,
  SubscribeOptions,
  Subscription,
  UpdateEvent,
  UpdateVia,
} from './consumer.ts';
export type { EndpointHealth, HealthCheckOptions } from './balancer.ts';
export { CACHE_FORMAT, encodeCacheFile, parseCacheFile } from './disk-cache.ts';
export type { CachedVersion } from './disk-cache.ts';
export type { MetricsOptions } from './metrics.ts';
export type { ListVersionsOptions } from './history.ts';
export type { DownloadProgress, RegionFailure, S3RegionClientOptions } from './download.ts';
export { verifyPayload } from './download.ts';
export type { AuditEntryInfo, PinInfo, RolloutPlanInfo, RolloutRunInfo, RolloutStageInfo, TopicInfo, VersionInfo } from './mapping.ts';
export { topicFromPb } from './mapping.ts';
export { FIELD_TRAILER, RETRYABLE_CODES, fromGrpcError, isRetryable } from './errors.ts';
export type { RetryOptions } from './transport.ts';
export { createDirectUploader } from './direct-upload.ts';
export type { DirectPublishInput, DirectUploader, DirectUploaderOptions } from './direct-upload.ts';
export { createTokenAdmin } from './admin.ts';
export type { NewToken, TokenAdmin, TokenAdminOptions, TokenInfo } from './admin.ts';
export { AUTHORIZATION_METADATA, tokenClientOptions } from './auth.ts';
export { addKeyringKey, createLocalKeyring, decryptPayload, encryptPayload, encryptStream } from './encryption.ts';
export type { KeyProvider } from './encryption.ts';
