import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as AdminProto } from './gen/admin.ts';
import type { ProtoGrpcType as ConsumeProto } from './gen/consume.ts';
import type { ProtoGrpcType as InternalProto } from './gen/internal.ts';
import type { ProtoGrpcType as PublishProto } from './gen/publish.ts';
import type { PollResponse__Output } from './gen/quire/v1/PollResponse.ts';
import { createPollResponseDecoder } from './poll-decoder.ts';

/** Folder holding `quire/v1/*.proto` (the contract). */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));

/** proto-loader options matching the generated types (see package.json "generate"). */
export const LOADER_OPTIONS: protoLoader.Options = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let cached: (PublishProto & ConsumeProto & AdminProto & InternalProto) | undefined;
let pollDecoder: ((buf: Buffer) => PollResponse__Output) | undefined;

/**
 * The deserializer of `Poll` / `PollStream` answers in the loaded contract: the same object
 * as proto-loader's, decoded with less work (poll-decoder.ts).
 */
export function decodePollResponse(buf: Buffer): PollResponse__Output {
  pollDecoder ??= createPollResponseDecoder(PROTO_ROOT);
  return pollDecoder(buf);
}

/** The loaded contract: `quire.v1.PublishService`, `quire.v1.ConsumeService`, `quire.v1.AdminService`, `quire.v1.ChangeHintService` and messages. */
export function loadQuireProto(): PublishProto & ConsumeProto & AdminProto & InternalProto {
  if (!cached) {
    const def = protoLoader.loadSync(['quire/v1/publish.proto', 'quire/v1/consume.proto', 'quire/v1/admin.proto', 'quire/v1/internal.proto'], LOADER_OPTIONS);
    // Poll answers, what a long-poll consumer decodes most, take the leaner decoder (clients
    // only: a server deserializes requests and serializes answers).
    const consume = def['quire.v1.ConsumeService'] as protoLoader.ServiceDefinition;
    for (const m of ['Poll', 'PollStream']) {
      const method = consume[m];
      if (method !== undefined) consume[m] = { ...method, responseDeserialize: decodePollResponse };
    }
    cached = grpc.loadPackageDefinition(def) as unknown as PublishProto & ConsumeProto & AdminProto & InternalProto;
  }
  return cached;
}

export type { ProtoGrpcType as ConsumeProto } from './gen/consume.ts';
export type { ProtoGrpcType as PublishProto } from './gen/publish.ts';
export type { ProtoGrpcType as AdminProto } from './gen/admin.ts';
export type { ProtoGrpcType as InternalProto } from './gen/internal.ts';
// Change hints between the services (internal.proto).
export type { ChangeHintServiceHandlers, ChangeHintServiceClient } from './gen/quire/v1/ChangeHintService.ts';
export type { ChangeHint as PbChangeHint, ChangeHint__Output as PbChangeHintOutput } from './gen/quire/v1/ChangeHint.ts';
export type { WatchChangesRequest as PbWatchChangesRequest, WatchChangesRequest__Output as PbWatchChangesRequestOutput } from './gen/quire/v1/WatchChangesRequest.ts';
// Access control (admin.proto).
export type { AdminServiceHandlers, AdminServiceClient } from './gen/quire/v1/AdminService.ts';
export type { ApiToken as PbApiToken, ApiToken__Output as PbApiTokenOutput } from './gen/quire/v1/ApiToken.ts';

// Generated message and service types the services map to and from.
export type { PublishServiceHandlers, PublishServiceClient } from './gen/quire/v1/PublishService.ts';
export type { Topic as PbTopic, Topic__Output as PbTopicOutput } from './gen/quire/v1/Topic.ts';
export type { VersionDescriptor as PbVersionDescriptor, VersionDescriptor__Output as PbVersionDescriptorOutput } from './gen/quire/v1/VersionDescriptor.ts';
export type { Release as PbRelease, Release__Output as PbReleaseOutput } from './gen/quire/v1/Release.ts';
export type { AuditEntry as PbAuditEntry, AuditEntry__Output as PbAuditEntryOutput } from './gen/quire/v1/AuditEntry.ts';
export type { Scope as PbScope, Scope__Output as PbScopeOutput } from './gen/quire/v1/Scope.ts';
export type { BlobLocation as PbBlobLocation, BlobLocation__Output as PbBlobLocationOutput } from './gen/quire/v1/BlobLocation.ts';
export type { RolloutPlan as PbRolloutPlan, RolloutPlan__Output as PbRolloutPlanOutput } from './gen/quire/v1/RolloutPlan.ts';
export type { RolloutRun as PbRolloutRun, RolloutRun__Output as PbRolloutRunOutput } from './gen/quire/v1/RolloutRun.ts';
export type { Pin as PbPin, Pin__Output as PbPinOutput } from './gen/quire/v1/Pin.ts';
export type { PublishOptions as PbPublishOptions, PublishOptions__Output as PbPublishOptionsOutput } from './gen/quire/v1/PublishOptions.ts';
export type { PublishChunk as PbPublishChunk, PublishChunk__Output as PbPublishChunkOutput } from './gen/quire/v1/PublishChunk.ts';
export type { PublishResponse as PbPublishResponse, PublishResponse__Output as PbPublishResponseOutput } from './gen/quire/v1/PublishResponse.ts';
// Consume side (added for @quire/consume-service).
export type { ConsumeServiceHandlers, ConsumeServiceClient } from './gen/quire/v1/ConsumeService.ts';
export type { ConsumerIdentity as PbConsumerIdentity, ConsumerIdentity__Output as PbConsumerIdentityOutput } from './gen/quire/v1/ConsumerIdentity.ts';
export type { PollRequest as PbPollRequest, PollRequest__Output as PbPollRequestOutput } from './gen/quire/v1/PollRequest.ts';
export type { PollResponse as PbPollResponse, PollResponse__Output as PbPollResponseOutput } from './gen/quire/v1/PollResponse.ts';
export { versionDescriptorToPb } from './mapping.ts';
