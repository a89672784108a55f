/**
 * Row shapes of the embedded store's tables and their mapping to domain types. NULL
 * columns become absent properties (never `null`), JSON columns are parsed.
 */
import type {
  AuditEntry,
  DataPointer,
  FleetReport,
  Lease,
  Pin,
  Release,
  RolloutRun,
  RunStatus,
  Topic,
  VersionRecord,
} from '@quire/core';

export interface TopicRow {
  name: string;
  owner: string;
  description: string;
  retention: string;
  inline_threshold: number;
  rollout_plan: string | null;
  json_schema: string | null;
  allowed_applications: string | null;
  encryption: string | null;
  created_at: number;
  updated_at: number;
  revision: number;
}

export function topicToRow(t: Topic): TopicRow {
  return {
    name: t.name,
    owner: t.owner,
    description: t.description,
    retention: JSON.stringify(t.retention),
    inline_threshold: t.inlineThresholdBytes,
    rollout_plan: t.rolloutPlan === undefined ? null : JSON.stringify(t.rolloutPlan),
    json_schema: t.jsonSchema ?? null,
    allowed_applications: t.allowedApplications === undefined ? null : JSON.stringify(t.allowedApplications),
    encryption: t.encryption === undefined ? null : JSON.stringify(t.encryption),
    created_at: t.createdAt,
    updated_at: t.updatedAt,
    revision: t.revision,
  };
}

export function topicFromRow(r: TopicRow): Topic {
  const t: Topic = {
    name: r.name,
    owner: r.owner,
    description: r.description,
    retention: JSON.parse(r.retention) as Topic['retention'],
    inlineThresholdBytes: r.inline_threshold,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    revision: r.revision,
  };
  if (r.rollout_plan !== null) t.rolloutPlan = JSON.parse(r.rollout_plan) as NonNullable<Topic['rolloutPlan']>;
  if (r.json_schema !== null) t.jsonSchema = r.json_schema;
  if (r.allowed_applications !== null) t.allowedApplications = JSON.parse(r.allowed_applications) as string[];
  if (r.encryption !== null && r.encryption !== undefined) t.encryption = JSON.parse(r.encryption) as NonNullable<Topic['encryption']>;
  return t;
}

export interface VersionRow {
  topic: string;
  version: number;
  publish_id: string;
  created_at: number;
  publisher: string;
  metadata: string;
  content_type: string;
  size: number;
  sha256: string;
  pointer: string;
  deleted_at: number | null;
}

export function versionFromRow(r: VersionRow): VersionRecord {
  const v: VersionRecord = {
    topic: r.topic,
    version: r.version,
    publishId: r.publish_id,
    createdAt: r.created_at,
    publisher: r.publisher,
    metadata: JSON.parse(r.metadata) as VersionRecord['metadata'],
    contentType: r.content_type,
    size: r.size,
    sha256: r.sha256,
    pointer: JSON.parse(r.pointer) as DataPointer,
  };
  if (r.deleted_at !== null) v.deletedAt = r.deleted_at;
  return v;
}

export interface ReleaseRow {
  topic: string;
  version: number;
  scope_key: string;
  scope: string;
  released_at: number;
  released_by: string;
  run_id: string | null;
  withdrawn_at: number | null;
}

export function releaseFromRow(r: ReleaseRow): Release {
  const out: Release = {
    topic: r.topic,
    version: r.version,
    scope: JSON.parse(r.scope) as Release['scope'],
    scopeKey: r.scope_key,
    releasedAt: r.released_at,
    releasedBy: r.released_by,
  };
  if (r.run_id !== null) out.runId = r.run_id;
  if (r.withdrawn_at !== null) out.withdrawnAt = r.withdrawn_at;
  return out;
}

export interface PinRow {
  topic: string;
  pin_id: string;
  scope_key: string;
  scope: string;
  version: number;
  reason: string;
  pinned_by: string;
  pinned_at: number;
  unpinned_at: number | null;
  unpinned_by: string | null;
}

export function pinFromRow(r: PinRow): Pin {
  const out: Pin = {
    topic: r.topic,
    pinId: r.pin_id,
    scope: JSON.parse(r.scope) as Pin['scope'],
    scopeKey: r.scope_key,
    version: r.version,
    reason: r.reason,
    pinnedBy: r.pinned_by,
    pinnedAt: r.pinned_at,
  };
  if (r.unpinned_at !== null) out.unpinnedAt = r.unpinned_at;
  if (r.unpinned_by !== null) out.unpinnedBy = r.unpinned_by;
  return out;
}

export interface RunRow {
  topic: string;
  run_id: string;
  version: number;
  plan: string;
  status: string;
  stage_index: number;
  stage_released_at: number;
  paused_at: number | null;
  reason: string | null;
  created_at: number;
  updated_at: number;
  started_by: string;
  /** Added by migration 3 (absent in rows read by an older SELECT list: undefined). */
  epoch?: number | null;
  revision: number;
}

export function runToRow(run: RolloutRun): RunRow {
  return {
    topic: run.topic,
    run_id: run.runId,
    version: run.version,
    plan: JSON.stringify(run.plan),
    status: run.status,
    stage_index: run.stageIndex,
    stage_released_at: run.stageReleasedAt,
    paused_at: run.pausedAt ?? null,
    reason: run.reason ?? null,
    created_at: run.createdAt,
    updated_at: run.updatedAt,
    started_by: run.startedBy,
    epoch: run.epoch ?? null,
    revision: run.revision,
  };
}

export function runFromRow(r: RunRow): RolloutRun {
  const out: RolloutRun = {
    topic: r.topic,
    runId: r.run_id,
    version: r.version,
    plan: JSON.parse(r.plan) as RolloutRun['plan'],
    status: r.status as RunStatus,
    stageIndex: r.stage_index,
    stageReleasedAt: r.stage_released_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedBy: r.started_by,
    revision: r.revision,
  };
  if (r.paused_at !== null) out.pausedAt = r.paused_at;
  if (r.reason !== null) out.reason = r.reason;
  if (r.epoch !== null && r.epoch !== undefined) out.epoch = r.epoch;
  return out;
}

export interface LeaseRow {
  name: string;
  owner: string;
  epoch: number;
  expires_at: number;
}

export function leaseFromRow(r: LeaseRow): Lease {
  return { name: r.name, owner: r.owner, epoch: r.epoch, expiresAt: r.expires_at };
}

export interface AuditRow {
  id: string;
  at: number;
  actor: string;
  action: string;
  topic: string | null;
  reason: string | null;
  details: string;
}

export function auditFromRow(r: AuditRow): AuditEntry {
  const out: AuditEntry = {
    id: r.id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    details: JSON.parse(r.details) as Record<string, unknown>,
  };
  if (r.topic !== null) out.topic = r.topic;
  if (r.reason !== null) out.reason = r.reason;
  return out;
}

export interface FleetRow {
  topic: string;
  instance: string;
  identity: string;
  version: number;
  failed_version: number | null;
  error: string | null;
  reported_at: number;
}

export function fleetFromRow(r: FleetRow): FleetReport {
  const out: FleetReport = {
    topic: r.topic,
    instance: r.instance,
    identity: JSON.parse(r.identity) as FleetReport['identity'],
    version: r.version,
    reportedAt: r.reported_at,
  };
  if (r.failed_version !== null) out.failedVersion = r.failed_version;
  if (r.error !== null) out.error = r.error;
  return out;
}
