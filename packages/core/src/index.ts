export { Code, QuireError, isQuireError, grpcStatusOf, httpStatusOf, codeFromGrpcStatus } from './errors.ts';
export type { QuireErrorOptions } from './errors.ts';
export type {
  AuditEntry,
  BlobLocation,
  Change,
  ConsumerIdentity,
  DataPointer,
  FleetReport,
  HealthGate,
  Lease,
  Metadata,
  NewVersion,
  Page,
  PageRequest,
  Pin,
  Release,
  RetentionPolicy,
  RolloutPlan,
  RolloutRun,
  RolloutStage,
  RunStatus,
  Scope,
  Topic,
  TopicEncryption,
  VersionRecord,
} from './model.ts';
export {
  LIMITS,
  validateBlobKey,
  validateInlineThreshold,
  validateMetadata,
  validatePageLimit,
  validatePublishId,
  validateRetention,
  validateRolloutPlan,
  validateScope,
  validateSha256,
  validateTopicName,
  validateVersionNumber,
} from './validation.ts';
export { describeScope, parseScopeKey, scopeKey, scopeMatches, scopeSpecificity } from './scope.ts';
export { activePins, activeReleases, applicablePin, candidateVersions, currentResolution, latestPerScope, resolveVersion } from './resolve.ts';
export type { Resolution, ResolutionState } from './resolve.ts';
export { protectedVersions, protectionOf, protections, selectForDeletion } from './retention.ts';
export type { RetentionCandidate } from './retention.ts';
export { rollbackTarget, scopeCovers, scopesNested } from './rollback.ts';
export type { RollbackDecision, RollbackRefusal } from './rollback.ts';
export {
  abortRun,
  advanceRun,
  applyAction,
  isActiveRun,
  newRun,
  nextAction,
  nextStageDueAt,
  pauseRun,
  resumeRun,
} from './rollout.ts';
export type { RolloutAction, StageHealth } from './rollout.ts';
export { systemClock } from './ports.ts';
export type {
  AuditQuery,
  BlobGetOptions,
  BlobGetResult,
  BlobHead,
  BlobListEntry,
  BlobPutOptions,
  BlobPutResult,
  BlobStore,
  Clock,
  ListVersionsRequest,
  MetadataStore,
  TopicStamp,
} from './ports.ts';
export { DATA_KEY_PREFIX, SNAPSHOT_FORMAT, SNAPSHOT_INLINE_MAX_BYTES, dataKey, resolutionStateFromSnapshot, snapshotKey, topicOfDataKey } from './snapshot.ts';
export type { SnapshotTopicSettings, TopicSnapshot } from './snapshot.ts';
export {
  ACTIONS,
  ROLES,
  applicationMayConsume,
  authorize,
  bearerToken,
  formatTokenString,
  parseTokenString,
  prefixesCover,
  roleAllows,
  tokenExpired,
  tokenView,
  validateTokenInput,
} from './access.ts';
export type { AccessDecision, AccessRequest, Action, ApiToken, ApiTokenView, NewTokenInput, Principal, Role, TokenSettings } from './access.ts';
export { ENCRYPTION_ALGORITHMS, ENCRYPTION_METADATA, checkPublishEncryption, checkTopicEncryptionSettings, encryptionAad, encryptionOf, validateTopicEncryption } from './encryption.ts';
export { backoffDelay } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';
