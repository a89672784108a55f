import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as ConsumeProto } from './gen/consume.ts';
import type { ProtoGrpcType as PublishProto } from './gen/publish.ts';

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

let cached: (PublishProto & ConsumeProto) | undefined;

/** The loaded contract: `quire.v1.PublishService`, `quire.v1.ConsumeService` and messages. */
export function loadQuireProto(): PublishProto & ConsumeProto {
  if (!cached) {
    const def = protoLoader.loadSync(['quire/v1/publish.proto', 'quire/v1/consume.proto'], LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(def) as unknown as PublishProto & ConsumeProto;
  }
  return cached;
}

export type { ProtoGrpcType as ConsumeProto } from './gen/consume.ts';
export type { ProtoGrpcType as PublishProto } from './gen/publish.ts';
