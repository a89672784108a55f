// How readiness combines its checks: any `down` → not ready; a failing check tolerated by
// `degradedWhile` → ready but degraded; a probe that does not answer in time is down;
// `stop()` → not ready for good. Each report reaches `onReport` (gRPC health) and the gauges.
import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.ts';
import { Readiness, type ReadinessReport } from './readiness.ts';
import { metricValue, parseMetrics } from './testing.ts';

const up = async (): Promise<void> => {};
const fail = async (): Promise<never> => {
  throw new Error('connection refused');
};

describe('Readiness', () => {
  it('is ready when every check is up', async () => {
    const r = new Readiness({ checks: [{ name: 'a', probe: up }, { name: 'b', probe: up }] });
    expect(await r.check()).toMatchObject({ ready: true, status: 'ready', checks: { a: { status: 'up' }, b: { status: 'up' } } });
  });

  it('is not ready when a check is down, naming the error', async () => {
    const r = new Readiness({ checks: [{ name: 'store', probe: fail }, { name: 's3', probe: up }] });
    expect(await r.check()).toMatchObject({ ready: false, status: 'not_ready', checks: { store: { status: 'down', error: 'connection refused' }, s3: { status: 'up' } } });
  });

  it('stays ready, degraded, while a failing check is tolerated', async () => {
    let tolerated = true;
    const r = new Readiness({ checks: [{ name: 'store', probe: fail, degradedWhile: () => tolerated }] });
    expect(await r.check()).toMatchObject({ ready: true, status: 'degraded', checks: { store: { status: 'degraded' } } });
    tolerated = false;
    expect(await r.check()).toMatchObject({ ready: false, checks: { store: { status: 'down' } } });
  });

  it('treats a probe that does not answer in time as down', async () => {
    const r = new Readiness({ timeoutMs: 20, checks: [{ name: 'slow', probe: () => new Promise(() => {}) }] });
    expect(await r.check()).toMatchObject({ ready: false, checks: { slow: { status: 'down', error: 'no answer within 20 ms' } } });
  });

  it('checks conditions without probing, with their details', async () => {
    const state: { reason?: string } = {};
    const r = new Readiness({ checks: [{ name: 'cache', probe: up, condition: () => state.reason, details: () => ({ ageMs: 7 }) }] });
    expect(await r.check()).toMatchObject({ ready: true, checks: { cache: { status: 'up', ageMs: 7 } } });
    state.reason = 'too old';
    expect(await r.check()).toMatchObject({ ready: false, checks: { cache: { status: 'down', error: 'too old', ageMs: 7 } } });
  });

  it('reports to onReport and the gauges; not ready after stop()', async () => {
    const metrics = createMetrics('consume');
    const reports: ReadinessReport[] = [];
    const r = new Readiness({ metrics, onReport: (x) => reports.push(x), checks: [{ name: 'store', probe: fail, degradedWhile: () => true }] });
    await r.check();
    let s = parseMetrics((await metrics.scrape()).body);
    expect(metricValue(s, 'quire_ready')).toBe(1);
    expect(metricValue(s, 'quire_readiness_check', { check: 'store' })).toBe(0.5);
    r.stop();
    expect(reports.map((x) => x.ready)).toEqual([true, false]);
    expect((await r.check()).ready).toBe(false);
    s = parseMetrics((await metrics.scrape()).body);
    expect(metricValue(s, 'quire_ready')).toBe(0);
  });
});
