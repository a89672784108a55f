/** Proto messages → the SDK's own types (at the edge, so the rest speaks domain types). */
import type { BlobLocation, DataPointer, Metadata, Scope } from '@quire/core';
import type { PbTopicOutput, PbVersionDescriptorOutput } from '@quire/proto';
import { toNumber } from './transport.ts';

/** A version as the services describe it. */
export interface VersionInfo {
  topic: string;
  version: number;
  publishId: string;
  createdAt: number;
  publisher: string;
  metadata: Metadata;
  contentType: string;
  size: number;
  /** Lowercase hex SHA-256 of the payload. */
  sha256: string;
  /** Inline (bytes in the metadata store) or S3 (locations, the consumer's region first). */
  pointer: DataPointer;
  /** Set when the version was deleted (its data is gone). */
  deletedAt?: number;
  /** Scopes of its active releases. */
  scopes: Scope[];
}

export interface TopicInfo {
  name: string;
  owner: string;
  description: string;
  inlineThresholdBytes: number;
  retention: { keepLast?: number; maxAgeMs?: number };
  allowedApplications: string[];
  createdAt: number;
  updatedAt: number;
  revision: number;
  /** Newest version number (0 = none). */
  headVersion: number;
}

export function versionFromPb(v: PbVersionDescriptorOutput): VersionInfo {
  const locations: BlobLocation[] = (v.s3?.locations ?? []).map((l) => ({ region: l.region, bucket: l.bucket, key: l.key }));
  const pointer: DataPointer = v.pointer === 's3' ? { kind: 's3', locations } : { kind: 'inline', blobId: v.inline?.blobId ?? '' };
  const deletedAt = toNumber(v.deletedAt);
  return {
    topic: v.topic,
    version: toNumber(v.version),
    publishId: v.publishId,
    createdAt: toNumber(v.createdAt),
    publisher: v.publisher,
    metadata: { ...v.metadata },
    contentType: v.contentType,
    size: toNumber(v.size),
    sha256: v.sha256,
    pointer,
    ...(deletedAt > 0 ? { deletedAt } : {}),
    scopes: v.scopes.map((s) => ({ ...s.attributes })),
  };
}

export function topicFromPb(t: PbTopicOutput): TopicInfo {
  const retention: TopicInfo['retention'] = {};
  if (t.retention !== null && t.retention.keepLast > 0) retention.keepLast = t.retention.keepLast;
  if (t.retention !== null && toNumber(t.retention.maxAgeMs) > 0) retention.maxAgeMs = toNumber(t.retention.maxAgeMs);
  return {
    name: t.name,
    owner: t.owner,
    description: t.description,
    inlineThresholdBytes: toNumber(t.inlineThresholdBytes),
    retention,
    allowedApplications: [...t.allowedApplications],
    createdAt: toNumber(t.createdAt),
    updatedAt: toNumber(t.updatedAt),
    revision: toNumber(t.revision),
    headVersion: toNumber(t.headVersion),
  };
}

/** A pin (an operator fixed the topic, or a scope of it, to a version). */
export interface PinInfo {
  pinId: string;
  scope: Scope;
  version: number;
  reason: string;
  pinnedBy: string;
  pinnedAt: number;
  /** Set when the pin ended (unpinned or replaced). */
  unpinnedAt?: number;
  unpinnedBy?: string;
}

/** `quire.v1.Pin` as the loader decodes it (int64 as strings). */
export interface PbPinOutput {
  pinId: string;
  scope: { attributes: Record<string, string> } | null;
  version: string;
  reason: string;
  pinnedBy: string;
  pinnedAt: string;
  unpinnedAt: string;
  unpinnedBy: string;
}

export function pinFromPb(p: PbPinOutput): PinInfo {
  const out: PinInfo = {
    pinId: p.pinId,
    scope: { ...(p.scope?.attributes ?? {}) },
    version: toNumber(p.version),
    reason: p.reason,
    pinnedBy: p.pinnedBy,
    pinnedAt: toNumber(p.pinnedAt),
  };
  const ended = toNumber(p.unpinnedAt);
  if (ended > 0) out.unpinnedAt = ended;
  if (p.unpinnedBy !== '') out.unpinnedBy = p.unpinnedBy;
  return out;
}
