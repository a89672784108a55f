import { describe, expect, it } from 'vitest';
import { Code, QuireError, codeFromGrpcStatus, grpcStatusOf, httpStatusOf } from './errors.ts';
import {
  LIMITS,
  validateBlobKey,
  validateInlineThreshold,
  validateMetadata,
  validatePageLimit,
  validatePublishId,
  validateRetention,
  validateRolloutPlan,
  validateScope,
  validateTopicName,
  validateVersionNumber,
} from './validation.ts';

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuireError);
    expect((e as QuireError).code).toBe(Code.INVALID_ARGUMENT);
    return (e as QuireError).field;
  }
  throw new Error('expected a validation error');
}

describe('validation', () => {
  it('topic names', () => {
    expect(validateTopicName('payments.ab-config')).toBe('payments.ab-config');
    expect(validateTopicName('devices.supported_v2')).toBe('devices.supported_v2');
    for (const bad of ['', 'Bad Name', '.x', 'x.', 'a..b', '-a', 'a/b', 'x'.repeat(LIMITS.topicNameMax + 1), 42]) {
      expect(fieldOf(() => validateTopicName(bad))).toBe('topic');
    }
    expect(fieldOf(() => validateTopicName('A', 'name'))).toBe('name');
  });

  it('metadata', () => {
    expect(validateMetadata({ source: 'nightly' })).toEqual({ source: 'nightly' });
    expect(validateMetadata(undefined)).toEqual({});
    expect(fieldOf(() => validateMetadata({ source: 1 }))).toBe('metadata.source');
    expect(fieldOf(() => validateMetadata({ 'bad key': 'x' }))).toBe('metadata.bad key');
    expect(fieldOf(() => validateMetadata(['x']))).toBe('metadata');
    const big = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'.repeat(4000)]));
    expect(fieldOf(() => validateMetadata(big))).toBe('metadata');
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect(fieldOf(() => validateMetadata(many))).toBe('metadata');
  });

  it('scopes, versions, retention, inline threshold, page limits', () => {
    expect(validateScope({ cluster: 'api-canary' })).toEqual({ cluster: 'api-canary' });
    expect(fieldOf(() => validateScope({ cluster: '' }))).toBe('scope.cluster');
    expect(validateVersionNumber(3)).toBe(3);
    expect(fieldOf(() => validateVersionNumber(0))).toBe('version');
    expect(fieldOf(() => validateVersionNumber(-1))).toBe('version');
    expect(fieldOf(() => validateVersionNumber(1.5))).toBe('version');
    expect(fieldOf(() => validateVersionNumber('1'))).toBe('version');
    expect(validateRetention({ keepLast: 3 })).toEqual({ keepLast: 3 });
    expect(fieldOf(() => validateRetention({ keepLast: -1 }))).toBe('retention.keepLast');
    expect(fieldOf(() => validateRetention({ maxAgeMs: 0 }))).toBe('retention.maxAgeMs');
    expect(validateInlineThreshold(undefined)).toBe(1024 * 1024);
    expect(fieldOf(() => validateInlineThreshold(-5))).toBe('inlineThresholdBytes');
    expect(validatePageLimit(undefined)).toBe(100);
    expect(fieldOf(() => validatePageLimit(5000))).toBe('limit');
  });

  it('blob keys refuse traversal and odd paths', () => {
    expect(validateBlobKey('topics/a.b/v1/0f3a')).toBe('topics/a.b/v1/0f3a');
    for (const bad of ['../x', 'a/../b', '/abs', 'a//b', 'a/./b', '', 'a b', 'a\\b']) {
      expect(fieldOf(() => validateBlobKey(bad))).toBe('key');
    }
  });

  it('publish ids: absent gives undefined; no "." (the blob key separator), spaces or overlong ids', () => {
    expect(validatePublishId('nightly-2026_11_25')).toBe('nightly-2026_11_25');
    for (const absent of [undefined, null, '']) expect(validatePublishId(absent)).toBeUndefined();
    for (const bad of ['a.b', 'no spaces', 'x'.repeat(LIMITS.publishIdMax + 1), 'a/b', 7]) {
      expect(fieldOf(() => validatePublishId(bad))).toBe('publishId');
    }
  });

  it('rollout plans: empty, duplicate stage scopes, bad bake time, bad health gate', () => {
    const ok = validateRolloutPlan({ stages: [{ scope: { cluster: 'c' }, bakeMs: 0 }, { scope: {}, bakeMs: 1000 }], health: { maxFailureRatio: 0.05, minInstances: 10, action: 'pause' } });
    expect(ok.stages).toHaveLength(2);
    expect(fieldOf(() => validateRolloutPlan({ stages: [] }))).toBe('rolloutPlan.stages');
    expect(fieldOf(() => validateRolloutPlan({ stages: [{ scope: {} }, { scope: {} }] }))).toBe('rolloutPlan.stages[1].scope');
    expect(fieldOf(() => validateRolloutPlan({ stages: [{ scope: {}, bakeMs: -1 }] }))).toBe('rolloutPlan.stages[0].bakeMs');
    expect(fieldOf(() => validateRolloutPlan({ stages: [{ scope: {} }], health: { maxFailureRatio: 2, minInstances: 1, action: 'pause' } }))).toBe('rolloutPlan.health.maxFailureRatio');
    expect(fieldOf(() => validateRolloutPlan({ stages: [{ scope: {} }], health: { maxFailureRatio: 0.1, minInstances: 1, action: 'explode' } }))).toBe('rolloutPlan.health.action');
  });
});

describe('error codes', () => {
  it('map to gRPC and HTTP statuses in one table', () => {
    expect(grpcStatusOf(Code.INVALID_ARGUMENT)).toBe(3);
    expect(httpStatusOf(Code.INVALID_ARGUMENT)).toBe(400);
    expect(httpStatusOf(Code.NOT_FOUND)).toBe(404);
    expect(httpStatusOf(Code.FAILED_PRECONDITION)).toBe(412);
    expect(httpStatusOf(Code.UNAVAILABLE)).toBe(503);
    expect(httpStatusOf(Code.RESOURCE_EXHAUSTED)).toBe(429);
    for (const c of Object.values(Code)) expect(codeFromGrpcStatus(grpcStatusOf(c))).toBe(c);
  });
  it('QuireError.from keeps a QuireError and wraps anything else with its cause', () => {
    const e = QuireError.invalid('topic', 'bad');
    expect(QuireError.from(e)).toBe(e);
    const cause = new Error('boom');
    const w = QuireError.from(cause, Code.UNAVAILABLE);
    expect(w.code).toBe(Code.UNAVAILABLE);
    expect(w.cause).toBe(cause);
  });
});
