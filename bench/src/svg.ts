// A grouped bar chart as a standalone SVG string, with min–max whiskers: enough for the
// report's comparisons, no dependency and byte-for-byte reproducible from the JSON.

export interface Bar {
  name: string;
  value: number;
  min?: number;
  max?: number;
}

export interface Group {
  label: string;
  bars: Bar[];
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function short(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  if (x >= 10_000) return `${(x / 1000).toFixed(0)}k`;
  if (x >= 1000) return `${(x / 1000).toFixed(1)}k`;
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** Grouped bars; `log` uses a log10 axis (for figures spanning decades). */
export function barChart(title: string, unit: string, groups: Group[], options: { log?: boolean } = {}): string {
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const perGroup = Math.max(1, ...groups.map((g) => g.bars.length));
  const barW = 22;
  const gap = 26;
  const left = 64;
  const top = 40;
  const plotH = 220;
  const groupW = perGroup * barW + gap;
  const width = Math.max(420, left + groups.length * groupW + 20);
  const legendH = 18 * Math.ceil(names.length / 3);
  const height = top + plotH + 70 + legendH;
  const values = groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.max ?? b.value])).filter((v) => Number.isFinite(v) && v > 0);
  const maxV = values.length ? Math.max(...values) : 1;
  const minV = values.length ? Math.min(...values) : 1;
  const lo = options.log ? Math.pow(10, Math.floor(Math.log10(minV))) : 0;
  const hi = options.log ? Math.pow(10, Math.ceil(Math.log10(maxV))) : maxV * 1.1;
  const y = (v: number): number => {
    if (!Number.isFinite(v) || v <= 0) return top + plotH;
    const f = options.log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1) : v / hi;
    return top + plotH - f * plotH;
  };
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`);
  // Axis and grid.
  const ticks = options.log
    ? Array.from({ length: Math.round(Math.log10(hi / lo)) + 1 }, (_, i) => lo * Math.pow(10, i))
    : Array.from({ length: 5 }, (_, i) => (hi * i) / 4);
  for (const t of ticks) {
    const ty = y(t === 0 ? Number.NaN : t);
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${(ty + 4).toFixed(1)}" text-anchor="end">${short(t)}</text>`);
  }
  out.push(`<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">${esc(unit)}${options.log ? ' (log)' : ''}</text>`);
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${left}" x2="${width - 10}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`);
  groups.forEach((g, gi) => {
    const gx = left + gap / 2 + gi * groupW;
    g.bars.forEach((b, bi) => {
      const color = COLORS[names.indexOf(b.name) % COLORS.length];
      const x = gx + bi * barW;
      const by = y(b.value);
      out.push(`<rect x="${x}" y="${by.toFixed(1)}" width="${barW - 4}" height="${(top + plotH - by).toFixed(1)}" fill="${color}"><title>${esc(`${b.name}: ${short(b.value)} ${unit}`)}</title></rect>`);
      if (b.min !== undefined && b.max !== undefined && Number.isFinite(b.min) && Number.isFinite(b.max)) {
        const cx = x + (barW - 4) / 2;
        out.push(`<line x1="${cx}" x2="${cx}" y1="${y(b.min).toFixed(1)}" y2="${y(b.max).toFixed(1)}" stroke="#000"/>`);
        out.push(`<line x1="${cx - 4}" x2="${cx + 4}" y1="${y(b.max).toFixed(1)}" y2="${y(b.max).toFixed(1)}" stroke="#000"/>`);
        out.push(`<line x1="${cx - 4}" x2="${cx + 4}" y1="${y(b.min).toFixed(1)}" y2="${y(b.min).toFixed(1)}" stroke="#000"/>`);
      }
      out.push(`<text x="${x + (barW - 4) / 2}" y="${(by - 3).toFixed(1)}" text-anchor="middle" font-size="9">${short(b.value)}</text>`);
    });
    const lx = gx + (g.bars.length * barW) / 2;
    g.label.split('\n').forEach((line, li) => out.push(`<text x="${lx}" y="${top + plotH + 14 + li * 12}" text-anchor="middle">${esc(line)}</text>`));
  });
  names.forEach((n, i) => {
    const lx = left + (i % 3) * 200;
    const ly = top + plotH + 48 + Math.floor(i / 3) * 18;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}">${esc(n)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
