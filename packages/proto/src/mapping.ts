// Domain → protobuf for the messages both services send (one copy of each mapping).
import type { Scope, VersionRecord } from '@quire/core';
import type { VersionDescriptor as PbVersionDescriptor } from './gen/quire/v1/VersionDescriptor.ts';

/** A version as `quire.v1.VersionDescriptor`, with the scopes it is released to. */
export function versionDescriptorToPb(v: VersionRecord, scopes: readonly Scope[]): PbVersionDescriptor {
  const out: PbVersionDescriptor = {
    topic: v.topic,
    version: v.version,
    publishId: v.publishId,
    createdAt: v.createdAt,
    publisher: v.publisher,
    metadata: { ...v.metadata },
    contentType: v.contentType,
    size: v.size,
    sha256: v.sha256,
    deletedAt: v.deletedAt ?? 0,
    scopes: scopes.map((s) => ({ attributes: { ...s } })),
  };
  if (v.pointer.kind === 'inline') out.inline = { blobId: v.pointer.blobId };
  else out.s3 = { locations: v.pointer.locations.map((l) => ({ region: l.region, bucket: l.bucket, key: l.key })) };
  return out;
}
