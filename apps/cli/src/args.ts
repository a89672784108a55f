/**
 * Parsing of the CLI's own argument syntax (`k=v`, `k=v,k=v`, sizes, durations, counts,
 * `host:port` lists). Every helper throws `QuireError.invalid(field, …)`, so a bad value
 * exits 2 with a message that names the option.
 */
import { QuireError } from '@quire/core';

/** `key=value` → [key, value]. The value may contain `=`; the key may not be empty. */
export function parseKeyValue(text: string, field: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq < 0) throw QuireError.invalid(field, `"${text}" is not key=value`);
  const key = text.slice(0, eq).trim();
  if (key === '') throw QuireError.invalid(field, `"${text}" has an empty key`);
  return [key, text.slice(eq + 1)];
}

/** Repeated `--meta k=v`: one map; a key given twice is refused (it is almost always a typo). */
export function parseMetadata(entries: readonly string[], field = 'meta'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of entries) {
    const [k, v] = parseKeyValue(entry, field);
    if (Object.hasOwn(out, k)) throw QuireError.invalid(field, `key "${k}" is given twice`);
    out[k] = v;
  }
  return out;
}

/**
 * `k=v,k=v` → an attribute map (a scope, a consumer identity). Values cannot contain `,`.
 * Empty entries (a trailing comma) are ignored; an empty list is the empty map.
 */
export function parseAttributes(text: string, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const [k, v] = parseKeyValue(part.trim(), field);
    if (v === '') throw QuireError.invalid(field, `"${k}" has an empty value`);
    if (Object.hasOwn(out, k)) throw QuireError.invalid(field, `"${k}" is given twice`);
    out[k] = v;
  }
  return out;
}

/** Repeated `--scope k=v,k=v`; `--scope global` (or `--scope ''`) is the empty, global scope. */
export function parseScopes(entries: readonly string[], field = 'scope'): Array<Record<string, string>> {
  return entries.map((e) => (e.trim() === 'global' ? {} : parseAttributes(e, field)));
}

/** A consumer identity for `--as`: attributes, `application` required. */
export function parseIdentity(text: string, field = 'as'): Record<string, string> & { application: string } {
  const attrs = parseAttributes(text, field);
  const application = attrs['application'];
  if (application === undefined) throw QuireError.invalid(field, 'must name the application (application=<name>,…)');
  return { ...attrs, application };
}

/** `host:port` (IPv6 as `[::1]:port`). */
export function parseEndpoint(text: string, field: string): string {
  const t = text.trim();
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(t);
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) throw QuireError.invalid(field, `"${text}" is not host:port`);
  return t;
}

/** `a:1,b:2` → ['a:1', 'b:2']. */
export function parseEndpoints(text: string, field: string): string[] {
  const list = text.split(',').filter((s) => s.trim() !== '');
  if (list.length === 0) throw QuireError.invalid(field, 'list at least one host:port');
  return list.map((e) => parseEndpoint(e, field));
}

/** Repeatable, comma-separable list (`--region a --region b,c`). */
export function parseList(entries: readonly string[]): string[] {
  return entries.flatMap((e) => e.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/** A whole number ≥ `min`. */
export function parseCount(text: string, field: string, min = 1): number {
  if (!/^\d+$/.test(text.trim())) throw QuireError.invalid(field, `"${text}" is not a whole number`);
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < min) throw QuireError.invalid(field, `must be at least ${min}`);
  return n;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3 };

/** `65536`, `512KiB`, `1MiB`, `1.5MB` → bytes. */
export function parseSize(text: string, field: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = m === null ? undefined : SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  if (m === null || unit === undefined) throw QuireError.invalid(field, `"${text}" is not a size (e.g. 65536, 512KiB, 1MiB)`);
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(Math.round(bytes))) throw QuireError.invalid(field, `"${text}" is too large`);
  return Math.round(bytes);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `90s`, `30m`, `12h`, `7d`, `2w`, `1d12h`, or plain milliseconds → ms. */
export function parseDuration(text: string, field: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const re = /(\d+)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    end = re.lastIndex;
  }
  if (t === '' || end !== t.length) throw QuireError.invalid(field, `"${text}" is not a duration (e.g. 90s, 30m, 12h, 7d, 1d12h)`);
  return total;
}

/** A version number argument. */
export function parseVersion(text: string, field = 'version'): number {
  return parseCount(text.replace(/^v/i, ''), field, 1);
}

export interface S3RegionAccess {
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
}

/**
 * How to read S3-stored versions, in the services' `QUIRE_S3_REGIONS` format: a JSON array
 * of `{ name, endpoint?, bucket?, accessKeyId?, secretAccessKey? }` (the bucket comes with
 * each version, so it is accepted and ignored here).
 */
export function parseS3Regions(text: string, field = 's3-regions'): Record<string, S3RegionAccess> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw QuireError.invalid(field, 'is not JSON (a list of {name, endpoint, accessKeyId, secretAccessKey})');
  }
  if (!Array.isArray(value)) throw QuireError.invalid(field, 'must be a JSON list of {name, endpoint, accessKeyId, secretAccessKey}');
  const out: Record<string, S3RegionAccess> = {};
  value.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null) throw QuireError.invalid(`${field}[${i}]`, 'must be an object');
    const r = entry as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (!['name', 'endpoint', 'bucket', 'accessKeyId', 'secretAccessKey'].includes(k)) throw QuireError.invalid(`${field}[${i}].${k}`, 'is not a known field');
      if (typeof r[k] !== 'string' || r[k] === '') throw QuireError.invalid(`${field}[${i}].${k}`, 'must be a non-empty string');
    }
    const name = r['name'] as string | undefined;
    if (name === undefined) throw QuireError.invalid(`${field}[${i}].name`, 'is required');
    if (Object.hasOwn(out, name)) throw QuireError.invalid(`${field}[${i}].name`, `region "${name}" is listed twice`);
    const access: S3RegionAccess = {};
    if (r['endpoint'] !== undefined) access.endpoint = r['endpoint'] as string;
    if (r['accessKeyId'] !== undefined) access.accessKeyId = r['accessKeyId'] as string;
    if (r['secretAccessKey'] !== undefined) access.secretAccessKey = r['secretAccessKey'] as string;
    out[name] = access;
  });
  return out;
}

/** One `--scope k=v,k=v` (or `global`, the default when absent). */
export function parseScope(text: string | undefined, field = 'scope'): Record<string, string> {
  if (text === undefined) return {};
  return parseScopes([text], field)[0] ?? {};
}

/**
 * An absolute time: epoch milliseconds (13 digits) or an ISO date or time; undefined when
 * the text is neither form (INVALID_ARGUMENT naming `field` when it looks like a date but is none).
 */
export function parseInstant(text: string, field: string): number | undefined {
  const t = text.trim();
  if (/^\d{13}$/.test(t)) return Number(t);
  if (!/^\d{4}-\d\d-\d\d/.test(t)) return undefined;
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw QuireError.invalid(field, `"${text}" is not a date or time (e.g. 2026-11-25T06:00:00Z)`);
  return ms;
}

/**
 * A point in time for `--since` / `--until`: a duration ago (`90m`, `2d`), an ISO date or
 * time (`2026-11-25`, `2026-11-25T06:00:00Z`), or epoch milliseconds (13 digits).
 */
export function parseTime(text: string, field: string, now = Date.now()): number {
  const t = text.trim();
  const at = parseInstant(t, field);
  if (at !== undefined) return at;
  let ago: number;
  try {
    ago = parseDuration(t, field);
  } catch {
    throw QuireError.invalid(field, `"${text}" is not a time: give a duration ago (90m, 2d) or an ISO date/time`);
  }
  return now - ago;
}

export interface PlanStageArg {
  name?: string;
  scope: Record<string, string>;
  bakeMs: number;
}
export interface PlanArg {
  stages: PlanStageArg[];
  health?: { maxFailureRatio: number; minInstances: number; action: 'pause' | 'rollback' };
}

/**
 * A rollout plan file: `{"stages":[{"name":"canary","scope":{"cluster":"canary"},"bake":"0s"},
 * {"scope":{},"bakeMs":3600000}],"health":{…}}` — each stage's bake as `bakeMs` or a `bake`
 * duration. Shapes are checked here; the service validates the rest and names the field.
 */
export function parsePlan(text: string, field = 'plan'): PlanArg {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw QuireError.invalid(field, 'is not JSON ({"stages":[{"scope":{…},"bake":"10m"},…]})');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw QuireError.invalid(field, 'must be a JSON object with "stages"');
  const p = value as Record<string, unknown>;
  if (!Array.isArray(p['stages']) || p['stages'].length === 0) throw QuireError.invalid(`${field}.stages`, 'must list at least one stage');
  const stages = p['stages'].map((raw: unknown, i: number): PlanStageArg => {
    const f = `${field}.stages[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw QuireError.invalid(f, 'must be an object');
    const s = raw as Record<string, unknown>;
    for (const k of Object.keys(s)) if (!['name', 'scope', 'bake', 'bakeMs'].includes(k)) throw QuireError.invalid(`${f}.${k}`, 'is not a known field (name, scope, bake, bakeMs)');
    const scope = s['scope'] ?? {};
    if (typeof scope !== 'object' || scope === null || Array.isArray(scope) || Object.values(scope).some((v) => typeof v !== 'string')) {
      throw QuireError.invalid(`${f}.scope`, 'must be an object of string values ({} = global)');
    }
    if (s['bake'] !== undefined && s['bakeMs'] !== undefined) throw QuireError.invalid(`${f}.bake`, 'give bake or bakeMs, not both');
    let bakeMs = 0;
    if (s['bake'] !== undefined) {
      if (typeof s['bake'] !== 'string') throw QuireError.invalid(`${f}.bake`, 'must be a duration string (e.g. "10m")');
      bakeMs = parseDuration(s['bake'], `${f}.bake`);
    } else if (s['bakeMs'] !== undefined) {
      if (typeof s['bakeMs'] !== 'number' || !Number.isSafeInteger(s['bakeMs']) || s['bakeMs'] < 0) throw QuireError.invalid(`${f}.bakeMs`, 'must be a whole number of ms');
      bakeMs = s['bakeMs'];
    }
    if (s['name'] !== undefined && typeof s['name'] !== 'string') throw QuireError.invalid(`${f}.name`, 'must be a string');
    return { ...(s['name'] === undefined ? {} : { name: s['name'] as string }), scope: { ...(scope as Record<string, string>) }, bakeMs };
  });
  const out: PlanArg = { stages };
  if (p['health'] !== undefined) out.health = p['health'] as PlanArg['health'] & object;
  return out;
}
