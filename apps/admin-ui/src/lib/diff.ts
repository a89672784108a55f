/**
 * Line diff of two versions' text for the diff view. JSON payloads are compared in a
 * canonical form (keys sorted, two-space indent), so a re-ordered or re-formatted JSON
 * file shows only its real changes. Long runs of unchanged lines fold into one "skip" row.
 */
import { diffLines } from 'diff';

export type DiffRow =
  | { kind: 'same' | 'add' | 'del'; text: string; oldLine?: number; newLine?: number }
  | { kind: 'skip'; count: number };

export interface DiffResult {
  rows: DiffRow[];
  added: number;
  removed: number;
  /** True when both sides parsed as JSON and were compared in canonical form. */
  json: boolean;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as Record<string, unknown>).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/** Canonical JSON text (sorted keys, indented), or undefined when `text` is not JSON. */
export function canonicalJson(text: string): string | undefined {
  const t = text.trim();
  if (t === '' || !/^[[{"\d-]|^(true|false|null)$/.test(t)) return undefined;
  try {
    return `${JSON.stringify(sortKeys(JSON.parse(t)), null, 2)}\n`;
  } catch {
    return undefined;
  }
}

function splitLines(value: string): string[] {
  const lines = value.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Diff `before` → `after`; unchanged runs longer than 2×context+1 lines are folded. */
export function diffTexts(before: string, after: string, options: { context?: number; asJson?: boolean } = {}): DiffResult {
  const context = options.context ?? 3;
  let a = before;
  let b = after;
  let json = false;
  if (options.asJson !== false) {
    const ca = canonicalJson(before);
    const cb = canonicalJson(after);
    if (ca !== undefined && cb !== undefined) {
      a = ca;
      b = cb;
      json = true;
    }
  }
  const full: Exclude<DiffRow, { kind: 'skip' }>[] = [];
  let oldLine = 1;
  let newLine = 1;
  let added = 0;
  let removed = 0;
  for (const part of diffLines(a, b)) {
    for (const text of splitLines(part.value)) {
      if (part.added) {
        full.push({ kind: 'add', text, newLine: newLine++ });
        added++;
      } else if (part.removed) {
        full.push({ kind: 'del', text, oldLine: oldLine++ });
        removed++;
      } else {
        full.push({ kind: 'same', text, oldLine: oldLine++, newLine: newLine++ });
      }
    }
  }
  // Fold unchanged runs: keep `context` lines next to each change.
  const keep = full.map((r) => r.kind !== 'same');
  const near = new Array<boolean>(full.length).fill(false);
  keep.forEach((changed, i) => {
    if (!changed) return;
    for (let j = Math.max(0, i - context); j <= Math.min(full.length - 1, i + context); j++) near[j] = true;
  });
  const rows: DiffRow[] = [];
  let skipped = 0;
  full.forEach((row, i) => {
    if (near[i] || (added === 0 && removed === 0 && full.length <= 2 * context + 1)) {
      if (skipped > 0) rows.push({ kind: 'skip', count: skipped });
      skipped = 0;
      rows.push(row);
    } else {
      skipped++;
    }
  });
  if (skipped > 0) rows.push({ kind: 'skip', count: skipped });
  return { rows, added, removed, json };
}
