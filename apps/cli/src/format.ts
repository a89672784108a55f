/** Human output: sizes, times, pointers, metadata and aligned tables (stdout only). */
import type { TopicInfo, VersionInfo } from '@quire/client';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** `2026-11-25 06:20:01Z` (UTC, to the second). */
export function formatTime(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '-';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

export function formatDuration(ms: number): string {
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  for (const [u, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${u}`;
  return `${ms}ms`;
}

export function formatPointer(v: VersionInfo): string {
  if (v.pointer.kind === 'inline') return 'inline';
  return `s3:${v.pointer.locations.map((l) => `${l.region}/${l.bucket}/${l.key}`).join(',')}`;
}

export function formatAttributes(m: Record<string, string>): string {
  const entries = Object.entries(m);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

export function formatScopes(scopes: ReadonlyArray<Record<string, string>>): string {
  return scopes.map((s) => (Object.keys(s).length === 0 ? 'global' : formatAttributes(s))).join(' ') || '-';
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

export function versionLine(v: VersionInfo): string {
  return `${v.topic} v${v.version}  sha256 ${v.sha256}  ${formatBytes(v.size)} (${v.size} B)  ${formatPointer(v)}`;
}

export function topicDetails(t: TopicInfo): string {
  const retention = [
    t.retention.keepLast === undefined ? undefined : `keep last ${t.retention.keepLast}`,
    t.retention.maxAgeMs === undefined ? undefined : `max age ${formatDuration(t.retention.maxAgeMs)}`,
  ].filter((s) => s !== undefined);
  const rows: Array<[string, string]> = [
    ['name', t.name],
    ['owner', t.owner || '-'],
    ['description', t.description || '-'],
    ['head version', t.headVersion === 0 ? 'none' : String(t.headVersion)],
    ['inline up to', `${t.inlineThresholdBytes} B (${formatBytes(t.inlineThresholdBytes)})`],
    ['retention', retention.length === 0 ? 'keep all' : retention.join(', ')],
    ['encryption', t.encryption === undefined ? 'off' : `${t.encryption.algorithm}, key ${t.encryption.keyId}`],
    ['created', formatTime(t.createdAt)],
    ['updated', formatTime(t.updatedAt)],
    ['revision', String(t.revision)],
  ];
  return rows.map(([k, val]) => `${`${k}:`.padEnd(13)} ${val}`).join('\n') + '\n';
}

/** A span for people: `2d3h`, `1h0m`, `59m59s`, `12s`, `0s` (rounded up to the second; two units at most). */
export function formatSpan(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const units: ReadonlyArray<readonly [string, number]> = [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]];
  const i = units.findIndex(([, size]) => s >= size);
  if (i < 0) return '0s';
  const [u, size] = units[i] as readonly [string, number];
  const next = units[i + 1];
  return next === undefined ? `${s}${u}` : `${Math.floor(s / size)}${u}${Math.floor((s % size) / next[1])}${next[0]}`;
}
