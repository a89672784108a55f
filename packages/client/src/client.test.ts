// Pure pieces of the SDK, no server: error translation, retry timing, payload checks.
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { regionFirst, verifyPayload } from './download.ts';
import { FIELD_TRAILER, RETRYABLE_CODES, backoffDelay, fromGrpcError, isRetryable, jitter } from './errors.ts';

describe('fromGrpcError', () => {
  it('takes the code from the status and the field from the trailer', () => {
    const metadata = new grpc.Metadata();
    metadata.set(FIELD_TRAILER, 'metadata.owner');
    const err = Object.assign(new Error('3 INVALID_ARGUMENT: metadata.owner: too long'), {
      code: grpc.status.INVALID_ARGUMENT,
      details: 'metadata.owner: too long',
      metadata,
    });
    const q = fromGrpcError(err);
    expect(q).toBeInstanceOf(QuireError);
    expect({ code: q.code, field: q.field, message: q.message }).toEqual({ code: Code.INVALID_ARGUMENT, field: 'metadata.owner', message: 'metadata.owner: too long' });
    expect(q.cause).toBe(err);
  });

  it('retries exactly UNAVAILABLE and DEADLINE_EXCEEDED', () => {
    expect([...RETRYABLE_CODES].sort()).toEqual([Code.DEADLINE_EXCEEDED, Code.UNAVAILABLE]);
    const of = (code: grpc.status) => fromGrpcError(Object.assign(new Error('x'), { code, details: 'x', metadata: new grpc.Metadata() }));
    expect(isRetryable(of(grpc.status.UNAVAILABLE))).toBe(true);
    expect(isRetryable(of(grpc.status.DEADLINE_EXCEEDED))).toBe(true);
    expect(isRetryable(of(grpc.status.INVALID_ARGUMENT))).toBe(false);
    expect(isRetryable(of(grpc.status.INTERNAL))).toBe(false);
  });
});

describe('backoff and jitter', () => {
  it('grows exponentially within [ceiling/2, ceiling], capped', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(1000, 100 * 2 ** attempt);
      for (let i = 0; i < 20; i++) {
        const d = backoffDelay(attempt, { baseMs: 100, maxMs: 1000 });
        expect(d).toBeGreaterThanOrEqual(ceiling / 2);
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });
  it('jitters ±10%', () => {
    for (let i = 0; i < 100; i++) {
      const d = jitter(30_000);
      expect(d).toBeGreaterThanOrEqual(27_000);
      expect(d).toBeLessThanOrEqual(33_000);
    }
  });
});

describe('payload checks', () => {
  const bytes = new TextEncoder().encode('payload');
  const v = { topic: 't', version: 3, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
  it('accepts the recorded size and SHA-256, refuses anything else with DATA_LOSS', () => {
    expect(() => verifyPayload(bytes, v)).not.toThrow();
    expect(() => verifyPayload(bytes, { ...v, size: 6 })).toThrow(expect.objectContaining({ code: Code.DATA_LOSS, field: 'size' }));
    expect(() => verifyPayload(bytes, { ...v, sha256: '0'.repeat(64) })).toThrow(expect.objectContaining({ code: Code.DATA_LOSS, field: 'sha256' }));
  });
  it('puts the own region first, keeping the given order otherwise', () => {
    const l = (region: string) => ({ region, bucket: 'b', key: 'k' });
    expect(regionFirst([l('a'), l('b'), l('c')], 'b').map((x) => x.region)).toEqual(['b', 'a', 'c']);
    expect(regionFirst([l('a'), l('b')], undefined).map((x) => x.region)).toEqual(['a', 'b']);
  });
});
