/** Proto messages → the SDK's own types (at the edge, so the rest speaks domain types). */
import type { BlobLocation, DataPointer, Metadata, Scope } from '@quire/core';
import type { PbAuditEntryOutput, PbPinOutput, PbRolloutRunOutput, PbTopicOutput, PbVersionDescriptorOutput } from '@quire/proto';
import { toNumber } from './transport.ts';

// The generated message types (packages/proto), re-exported for the modules that call the RPCs.
export type { PbAuditEntryOutput, PbPinOutput, PbRolloutRunOutput } from '@quire/proto';

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
  /** Payload encryption, when on. */
  encryption?: { algorithm: string; keyId: string };
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
    ...(t.encryption === null || t.encryption === undefined || t.encryption.algorithm === '' ? {} : { encryption: { algorithm: t.encryption.algorithm, keyId: t.encryption.keyId } }),
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

/** One stage of a rollout plan: a scope and how long the previous stage bakes first. */
export interface RolloutStageInfo {
  name?: string;
  scope: Scope;
  bakeMs: number;
}

export interface RolloutPlanInfo {
  stages: RolloutStageInfo[];
  health?: { maxFailureRatio: number; minInstances: number; action: 'pause' | 'rollback' };
}

/** A rollout run of one version through a plan's stages. */
export interface RolloutRunInfo {
  topic: string;
  runId: string;
  version: number;
  plan: RolloutPlanInfo;
  /** running | paused | completed | aborted | rolled_back */
  status: string;
  /** Index of the last stage released; -1 before stage 1 is released. */
  stageIndex: number;
  stageReleasedAt: number;
  /** When the next stage is due (running runs with a stage left only). */
  nextStageAt?: number;
  reason?: string;
  createdAt: number;
  updatedAt: number;
  startedBy: string;
}

export function rolloutRunFromPb(r: PbRolloutRunOutput): RolloutRunInfo {
  const plan: RolloutPlanInfo = {
    stages: (r.plan?.stages ?? []).map((s) => ({ ...(s.name === '' ? {} : { name: s.name }), scope: { ...(s.scope?.attributes ?? {}) }, bakeMs: toNumber(s.bakeMs) })),
  };
  const h = r.plan?.health;
  if (h !== null && h !== undefined && h.action !== '') {
    plan.health = { maxFailureRatio: h.maxFailureRatio, minInstances: h.minInstances, action: h.action === 'pause' ? 'pause' : 'rollback' };
  }
  const next = toNumber(r.nextStageAt);
  return {
    topic: r.topic,
    runId: r.runId,
    version: toNumber(r.version),
    plan,
    status: r.status,
    stageIndex: r.stageIndex,
    stageReleasedAt: toNumber(r.stageReleasedAt),
    ...(next > 0 ? { nextStageAt: next } : {}),
    ...(r.reason === '' ? {} : { reason: r.reason }),
    createdAt: toNumber(r.createdAt),
    updatedAt: toNumber(r.updatedAt),
    startedBy: r.startedBy,
  };
}

/** One audit log entry (who did what to which topic, when and why). */
export interface AuditEntryInfo {
  id: string;
  at: number;
  actor: string;
  action: string;
  topic?: string;
  reason?: string;
  details: Record<string, unknown>;
}

export function auditFromPb(a: PbAuditEntryOutput): AuditEntryInfo {
  let details: Record<string, unknown> = {};
  try {
    const parsed: unknown = a.detailsJson === '' ? {} : JSON.parse(a.detailsJson);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) details = parsed as Record<string, unknown>;
  } catch {
    details = { raw: a.detailsJson };
  }
  return {
    id: a.id,
    at: toNumber(a.at),
    actor: a.actor,
    action: a.action,
    ...(a.topic === '' ? {} : { topic: a.topic }),
    ...(a.reason === '' ? {} : { reason: a.reason }),
    details,
  };
}
