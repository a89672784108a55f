import { describe, expect, it } from 'vitest';
import { fmt, latency, median, num, percentile, ratioSpread, spread } from './stats.ts';

describe('bench statistics', () => {
  it('nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
    expect(latency([3, 1, 2])).toEqual({ count: 3, min: 1, p50: 2, p99: 3, max: 3 });
    // A poll run's hundreds of thousands of samples (Math.min(...xs) overflowed the stack on them).
    const many = Array.from({ length: 500_000 }, (_, i) => (i * 7919) % 500_000);
    expect(latency(many)).toMatchObject({ count: 500_000, min: 0, max: 499_999 });
  });

  it('median and spread over repetitions, ignoring failed (non-finite) runs', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(spread([5, Number.NaN, 1, 3])).toEqual({ median: 3, min: 1, max: 5, runs: [5, Number.NaN, 1, 3] });
    expect(ratioSpread([2, 9], [4, 3])).toMatchObject({ median: 1.75, min: 0.5, max: 3 });
  });

  it('formats figures with their spread', () => {
    expect(fmt(spread([10.04, 12.5, 11]), ' ms')).toBe('11 ms [10.0–12.5]');
    expect(num(10_000)).toBe('10,000');
    expect(num(0.123)).toBe('0.12');
    expect(fmt(spread([]))).toBe('n/a');
  });
});
