import { QuireError } from './errors.ts';
import type { Metadata, RetentionPolicy, RolloutPlan, Scope } from './model.ts';
import { scopeKey } from './scope.ts';

export const LIMITS = {
  topicNameMax: 200,
  metadataEntriesMax: 64,
  metadataKeyMax: 128,
  metadataValueMax: 4096,
  metadataTotalBytesMax: 16 * 1024,
  scopeAttributesMax: 16,
  scopeValueMax: 256,
  stagesMax: 20,
  bakeMsMax: 30 * 24 * 3600 * 1000,
  blobKeyMax: 1024,
  inlineThresholdMax: 4 * 1024 * 1024,
  defaultInlineThreshold: 1024 * 1024,
  pageLimitMax: 1000,
  publishIdMax: 128,
} as const;

const SEGMENT = '[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?';
const TOPIC_RE = new RegExp(`^${SEGMENT}(?:\\.${SEGMENT})*$`);
const ATTR_KEY_RE = /^[A-Za-z0-9_.-]+$/;
const PUBLISH_ID_RE = new RegExp(`^[A-Za-z0-9_-]{1,${LIMITS.publishIdMax}}$`);

/** Topic names: dot-separated lowercase segments of [a-z0-9_-], e.g. `payments.ab-config`. */
export function validateTopicName(name: unknown, field = 'topic'): string {
  if (typeof name !== 'string' || name.length === 0) throw QuireError.invalid(field, 'is required');
  if (name.length > LIMITS.topicNameMax) {
    throw QuireError.invalid(field, `must be at most ${LIMITS.topicNameMax} characters`);
  }
  if (!TOPIC_RE.test(name)) {
    throw QuireError.invalid(
      field,
      `"${name}" is not a valid topic name (dot-separated segments of a-z, 0-9, "_" and "-", each starting and ending with a letter or digit)`,
    );
  }
  return name;
}

export function validateMetadata(metadata: unknown, field = 'metadata'): Metadata {
  if (metadata === undefined || metadata === null) return {};
  if (typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw QuireError.invalid(field, 'must be an object of string values');
  }
  const entries = Object.entries(metadata as Record<string, unknown>);
  if (entries.length > LIMITS.metadataEntriesMax) {
    throw QuireError.invalid(field, `has ${entries.length} entries, at most ${LIMITS.metadataEntriesMax} allowed`);
  }
  let total = 0;
  const out: Metadata = {};
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > LIMITS.metadataKeyMax || !ATTR_KEY_RE.test(k)) {
      throw QuireError.invalid(`${field}.${k}`, `key must be 1-${LIMITS.metadataKeyMax} characters of A-Z, a-z, 0-9, "_", "." and "-"`);
    }
    if (typeof v !== 'string') throw QuireError.invalid(`${field}.${k}`, 'value must be a string');
    if (v.length > LIMITS.metadataValueMax) {
      throw QuireError.invalid(`${field}.${k}`, `value must be at most ${LIMITS.metadataValueMax} characters`);
    }
    total += Buffer.byteLength(k) + Buffer.byteLength(v);
    out[k] = v;
  }
  if (total > LIMITS.metadataTotalBytesMax) {
    throw QuireError.invalid(field, `is ${total} bytes, at most ${LIMITS.metadataTotalBytesMax} allowed`);
  }
  return out;
}

export function validateScope(scope: unknown, field = 'scope'): Scope {
  if (scope === undefined || scope === null) return {};
  if (typeof scope !== 'object' || Array.isArray(scope)) {
    throw QuireError.invalid(field, 'must be an object of attribute → value');
  }
  const entries = Object.entries(scope as Record<string, unknown>);
  if (entries.length > LIMITS.scopeAttributesMax) {
    throw QuireError.invalid(field, `has ${entries.length} attributes, at most ${LIMITS.scopeAttributesMax} allowed`);
  }
  const out: Scope = {};
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > LIMITS.metadataKeyMax || !ATTR_KEY_RE.test(k)) {
      throw QuireError.invalid(`${field}.${k}`, 'attribute name must be A-Z, a-z, 0-9, "_", "." or "-"');
    }
    if (typeof v !== 'string' || v.length === 0 || v.length > LIMITS.scopeValueMax) {
      throw QuireError.invalid(`${field}.${k}`, `value must be a non-empty string of at most ${LIMITS.scopeValueMax} characters`);
    }
    out[k] = v;
  }
  return out;
}

export function validateVersionNumber(version: unknown, field = 'version'): number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version)) {
    throw QuireError.invalid(field, 'must be an integer');
  }
  if (version < 1) throw QuireError.invalid(field, `must be 1 or more, got ${version}`);
  return version;
}

export function validateSha256(hex: unknown, field = 'sha256'): string {
  if (typeof hex !== 'string' || !/^[0-9a-f]{64}$/.test(hex)) {
    throw QuireError.invalid(field, 'must be 64 lowercase hex characters');
  }
  return hex;
}

/**
 * Publish ids a caller may choose: 1-128 characters of [A-Za-z0-9_-] (no "." — the blob key
 * `topics/<topic>/<publishId>.<suffix>` uses it as the separator). Absent (undefined, null or
 * "") gives undefined: the service makes one. The same rule for every call that takes one.
 */
export function validatePublishId(id: unknown, field = 'publishId'): string | undefined {
  if (id === undefined || id === null || id === '') return undefined;
  if (typeof id !== 'string' || !PUBLISH_ID_RE.test(id)) {
    throw QuireError.invalid(field, `must be 1-${LIMITS.publishIdMax} characters of A-Z, a-z, 0-9, "_" and "-"`);
  }
  return id;
}

/**
 * Blob keys: relative paths of [A-Za-z0-9._-] segments separated by "/"; no empty, "." or
 * ".." segment, no leading "/", at most 1024 characters. Safe as an S3 key and as a path
 * under a directory.
 */
export function validateBlobKey(key: unknown, field = 'key'): string {
  if (typeof key !== 'string' || key.length === 0) throw QuireError.invalid(field, 'is required');
  if (key.length > LIMITS.blobKeyMax) throw QuireError.invalid(field, `must be at most ${LIMITS.blobKeyMax} characters`);
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..' || !/^[A-Za-z0-9._-]+$/.test(seg)) {
      throw QuireError.invalid(field, `"${key}" is not a safe blob key (relative path of [A-Za-z0-9._-] segments, no "." or ".." segments)`);
    }
  }
  return key;
}

export function validateRetention(retention: unknown, field = 'retention'): RetentionPolicy {
  if (retention === undefined || retention === null) return {};
  if (typeof retention !== 'object' || Array.isArray(retention)) throw QuireError.invalid(field, 'must be an object');
  const r = retention as Record<string, unknown>;
  const out: RetentionPolicy = {};
  if (r.keepLast !== undefined && r.keepLast !== null) {
    if (typeof r.keepLast !== 'number' || !Number.isSafeInteger(r.keepLast) || r.keepLast < 1) {
      throw QuireError.invalid(`${field}.keepLast`, 'must be an integer of 1 or more');
    }
    out.keepLast = r.keepLast;
  }
  if (r.maxAgeMs !== undefined && r.maxAgeMs !== null) {
    if (typeof r.maxAgeMs !== 'number' || !Number.isSafeInteger(r.maxAgeMs) || r.maxAgeMs < 1) {
      throw QuireError.invalid(`${field}.maxAgeMs`, 'must be a positive integer number of milliseconds');
    }
    out.maxAgeMs = r.maxAgeMs;
  }
  return out;
}

export function validateInlineThreshold(value: unknown, field = 'inlineThresholdBytes'): number {
  if (value === undefined || value === null) return LIMITS.defaultInlineThreshold;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > LIMITS.inlineThresholdMax) {
    throw QuireError.invalid(field, `must be an integer between 0 and ${LIMITS.inlineThresholdMax}`);
  }
  return value;
}

export function validateRolloutPlan(plan: unknown, field = 'rolloutPlan'): RolloutPlan {
  if (typeof plan !== 'object' || plan === null || Array.isArray(plan)) throw QuireError.invalid(field, 'must be an object');
  const p = plan as Record<string, unknown>;
  if (!Array.isArray(p.stages) || p.stages.length === 0) {
    throw QuireError.invalid(`${field}.stages`, 'must list at least one stage');
  }
  if (p.stages.length > LIMITS.stagesMax) {
    throw QuireError.invalid(`${field}.stages`, `must have at most ${LIMITS.stagesMax} stages`);
  }
  const seen = new Map<string, number>();
  const stages = p.stages.map((raw: unknown, i: number) => {
    const f = `${field}.stages[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw QuireError.invalid(f, 'must be an object');
    const s = raw as Record<string, unknown>;
    const scope = validateScope(s.scope, `${f}.scope`);
    const key = scopeKey(scope);
    const dup = seen.get(key);
    if (dup !== undefined) throw QuireError.invalid(`${f}.scope`, `repeats the scope of stage ${dup + 1}`);
    seen.set(key, i);
    const bakeMs = s.bakeMs ?? 0;
    if (typeof bakeMs !== 'number' || !Number.isSafeInteger(bakeMs) || bakeMs < 0 || bakeMs > LIMITS.bakeMsMax) {
      throw QuireError.invalid(`${f}.bakeMs`, `must be an integer between 0 and ${LIMITS.bakeMsMax}`);
    }
    if (s.name !== undefined && typeof s.name !== 'string') throw QuireError.invalid(`${f}.name`, 'must be a string');
    return s.name === undefined ? { scope, bakeMs } : { name: s.name as string, scope, bakeMs };
  });
  const out: RolloutPlan = { stages };
  if (p.health !== undefined && p.health !== null) {
    const h = p.health as Record<string, unknown>;
    const f = `${field}.health`;
    if (typeof h.maxFailureRatio !== 'number' || !(h.maxFailureRatio > 0 && h.maxFailureRatio <= 1)) {
      throw QuireError.invalid(`${f}.maxFailureRatio`, 'must be a number in (0, 1]');
    }
    if (typeof h.minInstances !== 'number' || !Number.isSafeInteger(h.minInstances) || h.minInstances < 1) {
      throw QuireError.invalid(`${f}.minInstances`, 'must be an integer of 1 or more');
    }
    if (h.action !== 'pause' && h.action !== 'rollback') {
      throw QuireError.invalid(`${f}.action`, 'must be "pause" or "rollback"');
    }
    out.health = { maxFailureRatio: h.maxFailureRatio, minInstances: h.minInstances, action: h.action };
  }
  return out;
}

/** Clamp a page size: default when absent, INVALID_ARGUMENT when out of range. */
export function validatePageLimit(limit: unknown, dflt = 100, field = 'limit'): number {
  if (limit === undefined || limit === null || limit === 0) return dflt;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > LIMITS.pageLimitMax) {
    throw QuireError.invalid(field, `must be an integer between 1 and ${LIMITS.pageLimitMax}`);
  }
  return limit;
}
