// The instrumentation's pure parts: which failures count, the bounded reason labels,
// and that wrapping keeps behaviour (results, errors, `this`) while counting.
import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { countFailures, failureCode, instrumentPolls, instrumentPublishes, reasonLabel } from './instrument.ts';
import { createMetrics } from './metrics.ts';
import { metricValue, parseMetrics } from './testing.ts';

describe('failureCode', () => {
  it('counts unreachable, timeout, internal and unknown errors; not the answers of a working store', () => {
    expect(failureCode(new QuireError(Code.UNAVAILABLE, 'down'))).toBe('UNAVAILABLE');
    expect(failureCode(new QuireError(Code.DEADLINE_EXCEEDED, 'slow'))).toBe('DEADLINE_EXCEEDED');
    expect(failureCode(new QuireError(Code.INTERNAL, 'bug'))).toBe('INTERNAL');
    expect(failureCode(new Error('boom'))).toBe('UNKNOWN');
    for (const code of [Code.NOT_FOUND, Code.ALREADY_EXISTS, Code.ABORTED, Code.FAILED_PRECONDITION, Code.INVALID_ARGUMENT]) {
      expect(failureCode(new QuireError(code, 'answer'))).toBeUndefined();
    }
  });
});

describe('reasonLabel', () => {
  it.each([
    ['metadata missing', 'metadata_missing'],
    ['inline data missing', 'inline_missing'],
    ['inline data is 3 bytes, expected 4', 'size_mismatch'],
    ['object in region-a is 3 bytes, expected 4', 'size_mismatch'],
    ['inline data checksum mismatch', 'checksum_mismatch'],
    ['no location in a region this instance can reach (eu)', 'no_location'],
    ['object missing in region-a, region-b', 'object_missing'],
    ['check failed: socket hang up', 'check_error'],
    [undefined, 'other'],
  ])('%s → %s', (reason, label) => {
    expect(reasonLabel(reason)).toBe(label);
  });
});

class Store {
  readonly #rows = new Map<string, number>([['a', 1]]);
  calls = 0;
  async get(k: string): Promise<number> {
    this.calls++;
    const v = this.#rows.get(k);
    if (v === undefined) throw new QuireError(Code.NOT_FOUND, `${k} not found`);
    return v;
  }
  async down(): Promise<never> {
    throw new QuireError(Code.UNAVAILABLE, 'cassandra: no host');
  }
  sync(): string {
    throw new Error('sync failure');
  }
}

describe('countFailures', () => {
  it('passes results and errors through (private fields work) and counts only failures', async () => {
    const m = createMetrics('publish');
    const store = countFailures(new Store(), 'cassandra', m.storeErrors);
    expect(await store.get('a')).toBe(1);
    await expect(store.get('b')).rejects.toMatchObject({ code: Code.NOT_FOUND });
    await expect(store.down()).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    await expect(store.down()).rejects.toMatchObject({ code: Code.UNAVAILABLE });
    expect(() => store.sync()).toThrow('sync failure');
    expect(store.calls).toBe(2);
    const samples = parseMetrics((await m.scrape()).body);
    expect(metricValue(samples, 'quire_metadata_store_errors_total', { adapter: 'cassandra', operation: 'down', code: 'UNAVAILABLE' })).toBe(2);
    expect(metricValue(samples, 'quire_metadata_store_errors_total', { operation: 'sync', code: 'UNKNOWN' })).toBe(1);
    expect(metricValue(samples, 'quire_metadata_store_errors_total', { operation: 'get' })).toBeUndefined();
  });
});

describe('instrumentPublishes', () => {
  it('counts created, replayed and failed publishes and the bytes of created versions', async () => {
    const m = createMetrics('publish');
    let n = 0;
    const service = {
      async publish(input: { id?: string; size: number }) {
        if (input.size < 0) throw new QuireError(Code.INVALID_ARGUMENT, 'size');
        return { replayed: input.id === 'seen', version: { version: ++n, size: input.size } };
      },
    };
    instrumentPublishes(service, m, ['publish']);
    await service.publish({ size: 10 });
    await service.publish({ size: 5 });
    await service.publish({ id: 'seen', size: 10 });
    await expect(service.publish({ size: -1 })).rejects.toThrow('size');
    const s = parseMetrics((await m.scrape()).body);
    expect(metricValue(s, 'quire_publishes_total', { outcome: 'created' })).toBe(2);
    expect(metricValue(s, 'quire_publishes_total', { outcome: 'replayed' })).toBe(1);
    expect(metricValue(s, 'quire_publishes_total', { outcome: 'failed' })).toBe(1);
    expect(metricValue(s, 'quire_publish_bytes_total')).toBe(15);
    expect(metricValue(s, 'quire_publish_duration_seconds_count')).toBe(4);
  });
});

describe('instrumentPolls', () => {
  it('counts polls by kind and outcome, updates handed out, durations, and the polls in flight while they wait', async () => {
    const m = createMetrics('consume');
    let release: () => void = () => {};
    type Input = { waitMs?: number; fail?: 'async' | 'sync' };
    type Done = (ctx: unknown, r: { updates: unknown[] } | undefined, err?: unknown) => void;
    // The consume service's shape: `pollInto` answers through a callback, `poll` is its promise form.
    const service = {
      heldPolls: 0,
      poll(input: Input): Promise<{ updates: unknown[] }> {
        return new Promise((resolve, reject) => this.pollInto(input, undefined, (_ctx, r, err) => (r === undefined ? reject(err as Error) : resolve(r)), undefined));
      },
      pollInto(input: Input, _signal: unknown, done: Done, ctx: unknown): void {
        if (input.fail === 'sync') throw new Error('thrown');
        this.answer(input).then(
          (r) => done(ctx, r),
          (err: unknown) => done(ctx, undefined, err),
        );
      },
      async answer(input: Input): Promise<{ updates: unknown[] }> {
        if (input.fail === 'async') throw new Error('refused');
        if ((input.waitMs ?? 0) > 0) await new Promise<void>((resolve) => (release = resolve));
        return { updates: [1, 2] };
      },
    };
    instrumentPolls(service as never, m);
    const samples = async () => parseMetrics(await m.registry.metrics());
    expect(await service.poll({})).toEqual({ updates: [1, 2] });
    const held = service.poll({ waitMs: 1000 });
    expect(metricValue(await samples(), 'quire_polls_in_flight', { kind: 'long' })).toBe(1);
    release();
    expect(await held).toEqual({ updates: [1, 2] });
    await expect(service.poll({ fail: 'async' })).rejects.toThrow('refused');
    // A poll method that throws instead of calling back: a failure all the same, counted.
    await expect(service.poll({ fail: 'sync' })).rejects.toThrow('thrown');
    const s = await samples();
    expect(metricValue(s, 'quire_polls_total', { kind: 'poll', outcome: 'ok' })).toBe(1);
    expect(metricValue(s, 'quire_polls_total', { kind: 'long', outcome: 'ok' })).toBe(1);
    expect(metricValue(s, 'quire_polls_total', { kind: 'poll', outcome: 'failed' })).toBe(2);
    expect(metricValue(s, 'quire_poll_updates_total')).toBe(4);
    expect(metricValue(s, 'quire_polls_in_flight', { kind: 'long' })).toBe(0);
    expect(metricValue(s, 'quire_polls_in_flight', { kind: 'poll' })).toBe(0);
    expect(metricValue(s, 'quire_poll_duration_seconds_count', { kind: 'poll' })).toBe(3);
    expect(metricValue(s, 'quire_poll_duration_seconds_count', { kind: 'long' })).toBe(1);
  });
});
