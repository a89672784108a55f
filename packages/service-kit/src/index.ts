// Public surface of @quire/service-kit: what the Quire services share.
export { APP_VARIABLES, ConfigError, LOG_LEVELS, SHARED_VARIABLES, configLoader, knownVariables, portSchema } from './config.ts';
export type { AppShape, BlobStoreConfig, Env, LogLevel, MetadataStoreConfig, QuireApp, S3RegionConfig, ServiceConfig } from './config.ts';
export { createStores } from './stores.ts';
export type { Stores } from './stores.ts';
export { CODE_TRAILER, FIELD_TRAILER, grpcErrorOf, grpcFailure, httpErrorOf, toQuireError } from './errors.ts';
export type { ErrorBody, HttpError } from './errors.ts';
export { REDACTED_PATHS, fastifyLogger, installErrorHandlers } from './rest.ts';
export { listenTransports } from './transports.ts';
export type { ListenOptions, Transports } from './transports.ts';
export { runService } from './main.ts';
export { describeBlobStore, describeMetadataStore, loadMigrateConfig, migrateStores } from './migrate.ts';
export type { MigrateConfig, MigrationReport } from './migrate.ts';
export { configTable } from './config-doc.ts';
export type { RunServiceOptions, RunningService } from './main.ts';
export {
  apiTokenSchema,
  auditEntrySchema,
  blobLocationSchema,
  bytesResponse,
  fleetReportSchema,
  objectSchema,
  pageSchema,
  pinSchema,
  pointerSchema,
  publishResultSchema,
  releaseSchema,
  retentionSchema,
  rolloutPlanSchema,
  rolloutRunSchema,
  scopeSchema,
  topicSchema,
  versionSchema,
  versionViewSchema,
  wrapSchema,
} from './schemas.ts';
export {
  ACTOR_HEADER,
  ANONYMOUS_ACTOR,
  OPERATIONS_ROUTES,
  AccessGuard,
  createAccessGuard,
  ensureBootstrapAdminToken,
  ensureDeploymentToken,
  guardGrpcHandlers,
  grpcActor,
  grpcPrincipal,
  hashSecret,
  installRestAuth,
  issueToken,
  listTokenViews,
  mintTokenString,
  registerToken,
  restActor,
  restPrincipal,
  revokeToken,
  topicOrAll,
} from './auth.ts';
export type { AccessGuardOptions, CallInfo, GrpcRule, GrpcRules, RestRule, RestRules } from './auth.ts';
export type { AuthConfig } from './config.ts';
