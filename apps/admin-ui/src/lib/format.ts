/** Small display helpers shared by the pages. */
import type { Scope } from '@quire/core';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatTime(ms: number | undefined): string {
  if (ms === undefined) return '—';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function formatAgo(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ago`;
  return `${Math.floor(h / 24)}d ago`;
}

/** `global` or `k=v, k=v` (sorted): core's `describeScope`, the one the services and CLI use. */
export { describeScope as scopeLabel } from '@quire/core';

/** Parse "cluster=canary, region=eu" into a scope; "" or "global" is `{}`. Throws naming the bad part. */
export function parseScope(text: string): Scope {
  const t = text.trim();
  if (t === '' || t === 'global' || t === '*') return {};
  const out: Scope = {};
  for (const part of t.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0 || eq === p.length - 1) throw new Error(`"${p}" is not attribute=value`);
    out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return out;
}

export function isTextual(contentType: string): boolean {
  const ct = contentType.toLowerCase();
  return ct.startsWith('text/') || ct.includes('json') || ct.includes('xml') || ct.includes('yaml') || ct.includes('csv') || ct.includes('javascript');
}

/** A compact time for tables: "Nov 25, 07:51:45" (the year only when not this year). */
export function formatShortTime(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const sameYear = d.getFullYear() === new Date(now).getFullYear();
  return d.toLocaleString(undefined, { ...(sameYear ? {} : { year: 'numeric' }), month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}
