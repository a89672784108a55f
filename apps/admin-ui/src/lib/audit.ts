/** How audit entries read in the audit log. */
import { scopeLabel } from './format.ts';

/** The details an operator reads: ids shortened, scopes and plans in words, bookkeeping left out. */
export function detailsText(details: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(details)) {
    if (v === undefined || v === null || k === 'revision' || k === 'publishId' || k === 'pinId' || k === 'epoch') continue;
    if (k === 'sha256' && typeof v === 'string') parts.push(`sha256 ${v.slice(0, 12)}…`);
    else if (k === 'runId' && typeof v === 'string') parts.push(`run ${v.slice(0, 8)}`);
    else if (k === 'scope' && typeof v === 'object') parts.push(`scope ${scopeLabel(v as Record<string, string>)}`);
    else if (k === 'scopes' && Array.isArray(v)) {
      if (v.length > 0) parts.push(`scopes ${v.map((s) => scopeLabel(s as Record<string, string>)).join('; ')}`);
    }
    else if (k === 'plan' && typeof v === 'object' && Array.isArray((v as { stages?: unknown }).stages)) {
      const stages = (v as { stages: { name?: string; scope: Record<string, string> }[] }).stages;
      parts.push(`plan ${stages.map((s, i) => s.name ?? `stage ${i + 1}`).join(' → ')}`);
    } else if (k === 'size' && typeof v === 'number') parts.push(`${v} bytes`);
    else if (k === 'stage' && typeof v === 'number') parts.push(`stage ${v}`);
    else if (typeof v === 'object') parts.push(`${k} ${JSON.stringify(v)}`);
    else parts.push(`${k} ${String(v)}`);
  }
  return parts.join(' · ');
}
