// Small, pure statistics over samples (milliseconds or any unit): percentiles by the
// nearest-rank method, and "median [min–max]" across repetitions.

/** Nearest-rank percentile (p in 0..100) of `xs`; NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** The per-repetition values the spread is taken over. */
  runs: number[];
}

/** Median and range of one figure measured once per repetition. */
export function spread(runs: readonly number[]): Spread {
  const clean = runs.filter((x) => Number.isFinite(x));
  if (clean.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, runs: [...runs] };
  return { median: median(clean), min: Math.min(...clean), max: Math.max(...clean), runs: [...runs] };
}

export interface Latency {
  count: number;
  /** The fastest (propagation: publish to the first subscriber, before most of the fan-out). */
  min: number;
  p50: number;
  p99: number;
  max: number;
}

export function latency(xs: readonly number[]): Latency {
  // Sorted once (not Math.min(...xs): a poll run collects hundreds of thousands of samples,
  // past the argument limit); percentile() of a sorted copy sorts nearly for free.
  const s = [...xs].sort((a, b) => a - b);
  return { count: xs.length, min: s[0] ?? Number.NaN, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? Number.NaN };
}

/** `12.3 [11.0–14.2]` with a sensible number of digits. */
export function fmt(s: Spread, unit = ''): string {
  if (!Number.isFinite(s.median)) return 'n/a';
  return `${num(s.median)}${unit} [${num(s.min)}–${num(s.max)}]`;
}

export function num(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (Number.isInteger(x) || a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** Spread of the ratio a/b taken per repetition (pairs measured side by side). */
export function ratioSpread(a: readonly number[], b: readonly number[]): Spread {
  return spread(a.map((x, i) => x / (b[i] as number)));
}
