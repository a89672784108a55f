/**
 * Cassandra rows ↔ domain types. Null columns become absent properties (never `null`);
 * JSON text columns are parsed; bigint columns (driver `Long`) become numbers.
 */
import type { AuditEntry, DataPointer, FleetReport, Pin, Release, RolloutRun, Scope, Topic, VersionRecord } from '@quire/core';
import { num, reqNum, str, type Row } from './db.ts';

function json<T>(v: unknown, fallback: T): T {
  const s = str(v);
  return s === undefined ? fallback : (JSON.parse(s) as T);
}

/** The Topic as stored in `topics.data` (its revision lives in its own column). */
export function topicData(t: Topic): string {
  const { revision: _revision, ...rest } = t;
  return JSON.stringify(rest);
}

export function topicFromRow(r: Row): Topic {
  return { ...json<Omit<Topic, 'revision'>>(r['data'], {} as Omit<Topic, 'revision'>), revision: reqNum(r['revision']) };
}

/** Positional parameters of `insertVersion` (deleted_at is null on insert). */
export function versionParams(v: VersionRecord): unknown[] {
  return [
    v.topic,
    v.version,
    v.publishId,
    v.createdAt,
    v.publisher,
    JSON.stringify(v.metadata),
    v.contentType,
    v.size,
    v.sha256,
    JSON.stringify(v.pointer),
  ];
}

export function versionFromRow(r: Row): VersionRecord {
  const v: VersionRecord = {
    topic: String(r['topic']),
    version: reqNum(r['version']),
    publishId: String(r['publish_id']),
    createdAt: reqNum(r['created_at']),
    publisher: String(r['publisher']),
    metadata: json<Record<string, string>>(r['metadata'], {}),
    contentType: String(r['content_type']),
    size: reqNum(r['size']),
    sha256: String(r['sha256']),
    pointer: json<DataPointer>(r['pointer'], { kind: 's3', locations: [] }),
  };
  const deletedAt = num(r['deleted_at']);
  if (deletedAt !== undefined) v.deletedAt = deletedAt;
  return v;
}

export function releaseFromRow(r: Row): Release {
  const out: Release = {
    topic: String(r['topic']),
    version: reqNum(r['version']),
    scope: json<Scope>(r['scope'], {}),
    scopeKey: String(r['scope_key']),
    releasedAt: reqNum(r['released_at']),
    releasedBy: String(r['released_by']),
  };
  const runId = str(r['run_id']);
  if (runId !== undefined) out.runId = runId;
  const withdrawnAt = num(r['withdrawn_at']);
  if (withdrawnAt !== undefined) out.withdrawnAt = withdrawnAt;
  return out;
}

export function pinFromRow(r: Row): Pin {
  const out: Pin = {
    topic: String(r['topic']),
    pinId: String(r['pin_id']),
    scope: json<Scope>(r['scope'], {}),
    scopeKey: String(r['scope_key']),
    version: reqNum(r['version']),
    reason: str(r['reason']) ?? '',
    pinnedBy: String(r['pinned_by']),
    pinnedAt: reqNum(r['pinned_at']),
  };
  const unpinnedAt = num(r['unpinned_at']);
  if (unpinnedAt !== undefined) out.unpinnedAt = unpinnedAt;
  const unpinnedBy = str(r['unpinned_by']);
  if (unpinnedBy !== undefined) out.unpinnedBy = unpinnedBy;
  return out;
}

/** The run as stored in `runs.data`; its revision lives in its own column. */
export function runData(run: RolloutRun): string {
  const { revision: _revision, ...rest } = run;
  return JSON.stringify(rest);
}

export function runFromRow(r: Row): RolloutRun {
  return { ...json<Omit<RolloutRun, 'revision'>>(r['data'], {} as Omit<RolloutRun, 'revision'>), revision: reqNum(r['revision']) };
}

export function auditFromRow(r: Row): AuditEntry {
  const out: AuditEntry = {
    id: String(r['id']),
    at: reqNum(r['at']),
    actor: String(r['actor']),
    action: String(r['action']),
    details: json<Record<string, unknown>>(r['details'], {}),
  };
  const topic = str(r['topic']);
  if (topic !== undefined) out.topic = topic;
  const reason = str(r['reason']);
  if (reason !== undefined) out.reason = reason;
  return out;
}

export function fleetFromRow(r: Row): FleetReport {
  const out: FleetReport = {
    topic: String(r['topic']),
    instance: String(r['instance']),
    identity: json<Record<string, string>>(r['identity'], {}),
    version: reqNum(r['version']),
    reportedAt: reqNum(r['reported_at']),
  };
  const failed = num(r['failed_version']);
  if (failed !== undefined) out.failedVersion = failed;
  const error = str(r['error']);
  if (error !== undefined) out.error = error;
  return out;
}
