import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, table } from './format.ts';
import { createProgress } from './progress.ts';

describe('human output', () => {
  it('sizes and durations', () => {
    expect(formatBytes(11)).toBe('11 B');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatDuration(7 * 86_400_000)).toBe('7d');
    expect(formatDuration(90_000)).toBe('90s');
    expect(formatDuration(1500)).toBe('1500ms');
  });

  it('aligns table columns', () => {
    expect(table(['A', 'LONG'], [['xyz', '1'], ['q', '22']])).toBe('A    LONG\nxyz  1\nq    22\n');
  });
});

describe('progress', () => {
  it('off a terminal: a plain line at most once a second, and a last line at the end', () => {
    const lines: string[] = [];
    let t = 0;
    const p = createProgress({ write: (s: string) => lines.push(s), isTTY: false }, 'publishing t', () => t);
    p.update(1024 * 1024, 4 * 1024 * 1024);
    t = 500;
    p.update(2 * 1024 * 1024, 4 * 1024 * 1024); // throttled
    t = 2000;
    p.update(4 * 1024 * 1024, 4 * 1024 * 1024);
    p.done(); // already drawn at 100%
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^publishing t \[#{6}\.{18}\] {2}25% {2}1\.0 MiB \/ 4\.0 MiB {2}.*\/s\n$/);
    expect(lines[1]).toMatch(/ 100% {2}4\.0 MiB \/ 4\.0 MiB {2}2\.0 MiB\/s\n$/);
  });

  it('on a terminal: redraws one line in place; unknown totals show bytes and rate', () => {
    const out: string[] = [];
    let t = 0;
    const p = createProgress({ write: (s: string) => out.push(s), isTTY: true }, 'publishing t', () => t);
    p.update(1024);
    t = 1000;
    p.update(2048);
    p.done();
    expect(out.every((s) => s.startsWith('\r'))).toBe(true);
    expect(out.at(-1)).toBe('\rpublishing t 2.0 KiB  2.0 KiB/s\x1b[K\n');
  });
});
