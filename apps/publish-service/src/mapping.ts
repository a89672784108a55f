/**
 * Domain ↔ protobuf messages for the gRPC transport. Proto3 has no "unset" for scalars:
 * 0 / "" / null mean "not given" on the way in and "absent" on the way out. int64 fields
 * arrive as decimal strings (`longs: String`) and are turned into safe integers here.
 */
import { QuireError } from '@quire/core';
import { versionDescriptorToPb } from '@quire/proto';
import type { AuditEntry, BlobLocation, Pin, Release, RetentionPolicy, RolloutPlan, Scope, VersionRecord } from '@quire/core';
import type {
  PbAuditEntry,
  PbBlobLocation,
  PbBlobLocationOutput,
  PbPublishOptionsOutput,
  PbRelease,
  PbRolloutPlan,
  PbRolloutPlanOutput,
  PbScope,
  PbScopeOutput,
  PbTopic,
  PbTopicOutput,
  PbVersionDescriptor,
} from '@quire/proto';
import type { PublishCommon, TopicSettings, TopicView } from './service.ts';

/** An int64 from the wire ("123") as a number; undefined for 0 / absent. */
export function int64(value: string | number | null | undefined, field: string): number | undefined {
  if (value === undefined || value === null || value === '' || value === '0' || value === 0) return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw QuireError.invalid(field, `${String(value)} is not a safe integer`);
  return n;
}

export function scopeFromPb(s: PbScopeOutput | null | undefined): Scope {
  return { ...(s?.attributes ?? {}) };
}

export function scopeToPb(s: Scope): PbScope {
  return { attributes: { ...s } };
}

function retentionToPb(r: RetentionPolicy): PbTopic['retention'] {
  return { keepLast: r.keepLast ?? 0, maxAgeMs: r.maxAgeMs ?? 0 };
}

export function planToPb(p: RolloutPlan): PbRolloutPlan {
  const out: PbRolloutPlan = { stages: p.stages.map((s) => ({ name: s.name ?? '', scope: scopeToPb(s.scope), bakeMs: s.bakeMs })) };
  if (p.health) out.health = { ...p.health };
  return out;
}

/** Proto plan → plain input for `validateRolloutPlan` (which names the bad field, under `field`). */
export function planFromPb(p: PbRolloutPlanOutput, field = 'rolloutPlan'): unknown {
  const out: Record<string, unknown> = {
    stages: p.stages.map((s, i) => {
      const stage: Record<string, unknown> = { scope: scopeFromPb(s.scope), bakeMs: int64(s.bakeMs, `${field}.stages[${i}].bakeMs`) ?? 0 };
      if (s.name !== '') stage.name = s.name;
      return stage;
    }),
  };
  if (p.health) out.health = { ...p.health };
  return out;
}

export function topicToPb(t: TopicView): PbTopic {
  const out: PbTopic = {
    name: t.name,
    owner: t.owner,
    description: t.description,
    retention: retentionToPb(t.retention),
    inlineThresholdBytes: t.inlineThresholdBytes,
    jsonSchema: t.jsonSchema ?? '',
    allowedApplications: t.allowedApplications ?? [],
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    revision: t.revision,
    headVersion: t.headVersion,
  };
  if (t.rolloutPlan) out.rolloutPlan = planToPb(t.rolloutPlan);
  if (t.encryption) out.encryption = { algorithm: t.encryption.algorithm, keyId: t.encryption.keyId };
  return out;
}

/** Settable fields of a proto Topic. With a mask only the listed fields; otherwise those that are set. */
export function topicSettingsFromPb(t: PbTopicOutput, mask: readonly string[] = []): TopicSettings {
  const all: Record<keyof TopicSettings, () => unknown> = {
    owner: () => (t.owner === '' ? undefined : t.owner),
    description: () => t.description,
    retention: () =>
      t.retention === null
        ? null
        : {
            ...(t.retention.keepLast === 0 ? {} : { keepLast: t.retention.keepLast }),
            ...(int64(t.retention.maxAgeMs, 'topic.retention.maxAgeMs') === undefined ? {} : { maxAgeMs: int64(t.retention.maxAgeMs, 'topic.retention.maxAgeMs') }),
          },
    inlineThresholdBytes: () => int64(t.inlineThresholdBytes, 'topic.inlineThresholdBytes'),
    rolloutPlan: () => (t.rolloutPlan === null ? null : planFromPb(t.rolloutPlan)),
    jsonSchema: () => (t.jsonSchema === '' ? null : t.jsonSchema),
    allowedApplications: () => (t.allowedApplications.length === 0 ? null : t.allowedApplications),
    encryption: () => (t.encryption === null || t.encryption.algorithm === '' || t.encryption.algorithm === 'off' ? null : { algorithm: t.encryption.algorithm, keyId: t.encryption.keyId }),
  };
  const out: TopicSettings = {};
  if (mask.length > 0) {
    for (const raw of mask) {
      const name = snakeToCamel(raw) as keyof TopicSettings;
      if (!(name in all)) throw QuireError.invalid('updateMask', `${raw} is not a settable topic field`);
      out[name] = all[name]() ?? null;
    }
    return out;
  }
  // No mask: the fields that carry a value.
  if (t.owner !== '') out.owner = t.owner;
  if (t.description !== '') out.description = t.description;
  if (t.retention !== null) out.retention = all.retention();
  const threshold = all.inlineThresholdBytes();
  if (threshold !== undefined) out.inlineThresholdBytes = threshold;
  if (t.rolloutPlan !== null) out.rolloutPlan = all.rolloutPlan();
  if (t.jsonSchema !== '') out.jsonSchema = t.jsonSchema;
  if (t.allowedApplications.length > 0) out.allowedApplications = t.allowedApplications;
  if (t.encryption !== null) out.encryption = all.encryption();
  return out;
}

function snakeToCamel(s: string): string {
  return s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export function locationToPb(l: BlobLocation): PbBlobLocation {
  return { region: l.region, bucket: l.bucket, key: l.key };
}

export function locationFromPb(l: PbBlobLocationOutput): Record<string, string> {
  return { region: l.region, bucket: l.bucket, key: l.key };
}

export function versionToPb(v: VersionRecord, releases: readonly Release[] = []): PbVersionDescriptor {
  return versionDescriptorToPb(
    v,
    releases.filter((r) => r.withdrawnAt === undefined).map((r) => r.scope),
  );
}

export function releaseToPb(r: Release): PbRelease {
  return {
    version: r.version,
    scope: scopeToPb(r.scope),
    releasedAt: r.releasedAt,
    releasedBy: r.releasedBy,
    runId: r.runId ?? '',
    withdrawnAt: r.withdrawnAt ?? 0,
  };
}

/** A pin as `quire.v1.Pin` (0 / "" for a pin not ended). */
export function pinToPb(p: Pin) {
  return {
    pinId: p.pinId,
    scope: scopeToPb(p.scope),
    version: p.version,
    reason: p.reason,
    pinnedBy: p.pinnedBy,
    pinnedAt: p.pinnedAt,
    unpinnedAt: p.unpinnedAt ?? 0,
    unpinnedBy: p.unpinnedBy ?? '',
  };
}

/** A request's optional Scope: absent (null) = global. */
export function optionalScopeFromPb(s: PbScopeOutput | null | undefined): Scope {
  return s === null || s === undefined ? {} : scopeFromPb(s);
}

export function auditToPb(a: AuditEntry): PbAuditEntry {
  return {
    id: a.id,
    at: a.at,
    actor: a.actor,
    action: a.action,
    topic: a.topic ?? '',
    reason: a.reason ?? '',
    detailsJson: JSON.stringify(a.details),
  };
}

/** PublishOptions → the service's publish fields (without data / publisher). */
export function publishOptionsFromPb(o: PbPublishOptionsOutput | null | undefined): Omit<PublishCommon, 'publisher'> & { regions?: unknown } {
  if (o === null || o === undefined) throw QuireError.invalid('options', 'is required');
  return {
    topic: o.topic,
    useRolloutPlan: o.useRolloutPlan,
    metadata: o.metadata,
    contentType: o.contentType,
    scopes: o.scopes.map(scopeFromPb),
    regions: o.regions,
    publishId: o.publishId,
    sha256: o.sha256,
    size: int64(o.size, 'size'),
  };
}
