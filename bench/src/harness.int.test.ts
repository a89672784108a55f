// Smoke run of the benchmark harness with tiny sizes against the real servers: every
// benchmark runs end to end and the result and report are well formed. No timing is
// asserted here (timing goals are what the benchmarks report, not what tests check).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { BENCHMARKS, runBench, type BenchResults } from './harness.ts';
import { targets, writeReport } from './report.ts';

const dir = mkdtempSync(join(tmpdir(), 'quire-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const finite = (x: number): boolean => Number.isFinite(x);

describe('benchmark harness (tiny sizes)', () => {
  it('runs every benchmark and writes a well-formed result and report', { timeout: 600_000 }, async () => {
    const progress: string[] = [];
    const results: BenchResults = await runBench({
      quick: true,
      only: [...BENCHMARKS],
      servers: inject('quireServers'),
      progress: (m) => progress.push(m),
      sizes: {
        reps: 1,
        consumers: [3],
        pollIntervalMs: 1000,
        s3Consumers: 2,
        s3PayloadBytes: 64 * 1024,
        pollTopics: [3],
        inflight: [2],
        pollSeconds: 0.3,
        payloads: [1024 * 1024],
        scaleTopics: 4,
        scaleVersions: 1,
        heldPolls: 10,
        publishTopics: 2,
        publishSeconds: 0.3,
        publishInflight: 2,
      },
    });
    expect(results.errors).toEqual([]);
    expect(results.schema).toBe('quire-bench/1');
    expect(results.machine.cpus).toBeGreaterThan(0);
    expect(results.versions['cassandra']).toMatch(/^\d+\.\d+/);
    expect(results.versions['etcd']).toMatch(/^\d+\.\d+/);

    const prop = results.propagation?.rows ?? [];
    expect(prop.map((r) => r.system).sort()).toEqual(['etcd watch', 'quire long-poll', 'quire long-poll, S3 payload', 'quire polling']);
    for (const r of prop) {
      expect(r.reps.length).toBeGreaterThan(0);
      expect(r.reps.every((x) => x.missing === 0 && x.count === r.consumers)).toBe(true);
      expect([r.p50.median, r.p99.median, r.max.median].every(finite)).toBe(true);
    }
    // Where the time goes: every stage of every long-poll publish was traced in the consume service.
    const lp = prop.find((r) => r.system === 'quire long-poll');
    expect(lp?.stages?.map((s) => s.seen)).toEqual(Array.from({ length: 11 }, () => lp?.reps.length));
    expect(lp?.stages?.every((s) => finite(s.fromStart.median))).toBe(true);
    expect(results.poll?.rows.map((r) => r.transport).sort()).toEqual(['grpc', 'rest']);
    for (const r of results.poll?.rows ?? []) expect(r.quire.rps.median > 0 && r.bare.rps.median > 0 && finite(r.ratio.median)).toBe(true);
    const large = results.large?.rows[0];
    expect(large?.bytes).toBe(1024 * 1024);
    expect(
      [large?.sdkPublish.median, large?.sdkDirect?.median, large?.rawUpload.median, large?.sdkDownload.median, large?.sdkDownloadTo?.median, large?.rawGet.median, large?.rss.sdkDownload.median, large?.rss.sdkDownloadTo?.median].every(
        (x) => x !== undefined && x > 0,
      ),
    ).toBe(true);
    expect(results.scale?.topics).toBe(4);
    expect(results.scale?.held.quire.missing).toBe(0);
    expect(results.scale?.held.bare.missing).toBe(0);
    expect(finite(results.scale?.coldStart.median ?? Number.NaN)).toBe(true);
    expect(results.publish?.rows).toHaveLength(4);
    expect(results.publish?.rows.every((r) => r.rate.median > 0 && r.errors === 0)).toBe(true);
    expect(results.capacity?.rows.length).toBe(3 * 2 * 2);
    expect(progress.some((m) => m.includes('propagation'))).toBe(true);

    // Round trip through JSON, as the CLI writes it, then the report.
    const back = JSON.parse(JSON.stringify(results)) as BenchResults;
    const report = writeReport(back, join(dir, 'REPORT.md'), join(dir, 'results', 'x.json'));
    for (const h of ['## Machine and versions', '## Targets', '## 1. Propagation', '## 2. Poll cost', '## 3. Large payloads', '## 4. Scale', '## 5. Publish throughput', '## 6. Capacity model']) {
      expect(report.markdown).toContain(h);
    }
    expect(report.markdown).toContain('### Where the time goes: quire long-poll, 3 subscribers');
    expect(targets(back).length).toBeGreaterThan(5);
    expect(readdirSync(join(dir, 'report')).sort()).toEqual(['held.svg', 'large.svg', 'poll-cost.svg', 'propagation.svg']);
    for (const f of report.charts) expect(readFileSync(f, 'utf8')).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    expect(existsSync(join(dir, 'REPORT.md'))).toBe(true);
  });
});
