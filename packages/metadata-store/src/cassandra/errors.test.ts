// Driver error → QuireError translation, on error objects built as cassandra-driver builds them.
import cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { isUnknownWriteOutcome, simulatedCasWriteTimeout, toQuireError } from './errors.ts';

const { errors } = cassandra;
const RC = cassandra.types.responseErrorCodes;

function response(code: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new errors.ResponseError(code, 'from the server'), extra);
}

describe('cassandra error translation', () => {
  it.each<[string, unknown, Code]>([
    ['no host available', new errors.NoHostAvailableError({}), Code.UNAVAILABLE],
    ['client timeout', new errors.OperationTimedOutError('timed out', '127.0.0.1:9042'), Code.UNAVAILABLE],
    ['busy connections', new errors.BusyConnectionError('127.0.0.1:9042', 2048, 1), Code.UNAVAILABLE],
    ['unavailable', response(RC.unavailableException), Code.UNAVAILABLE],
    ['overloaded', response(RC.overloaded), Code.UNAVAILABLE],
    ['bootstrapping', response(RC.isBootstrapping), Code.UNAVAILABLE],
    ['read timeout', response(RC.readTimeout), Code.UNAVAILABLE],
    ['plain write timeout', response(RC.writeTimeout, { writeType: 'SIMPLE' }), Code.UNAVAILABLE],
    ['read failure', response(RC.readFailure), Code.UNAVAILABLE],
    ['syntax error', response(RC.syntaxError), Code.INTERNAL],
    ['invalid query', response(RC.invalid), Code.INTERNAL],
    ['unauthorized', response(RC.unauthorized), Code.PERMISSION_DENIED],
    ['bad credentials', response(RC.badCredentials), Code.UNAUTHENTICATED],
    ['authentication', new errors.AuthenticationError('nope'), Code.UNAUTHENTICATED],
    ['connection refused outside the driver', Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }), Code.UNAVAILABLE],
    ['anything else', new Error('boom'), Code.INTERNAL],
  ])('%s → %s', (_name, err, code) => {
    const q = toQuireError(err, 'op');
    expect(q).toBeInstanceOf(QuireError);
    expect(q.code).toBe(code);
    expect(q.cause).toBe(err);
    expect(q.message).toContain('op');
  });

  it('passes a QuireError through unchanged', () => {
    const q = QuireError.invalid('topic', 'bad');
    expect(toQuireError(q, 'op')).toBe(q);
  });

  it('knows which LWT failures leave the outcome unknown', () => {
    expect(isUnknownWriteOutcome(simulatedCasWriteTimeout())).toBe(true);
    expect(isUnknownWriteOutcome(response(RC.writeTimeout, { writeType: 'CAS' }))).toBe(true);
    // The Paxos commit phase timed out: the value was accepted and will be applied.
    expect(isUnknownWriteOutcome(response(RC.writeTimeout, { writeType: 'SIMPLE' }))).toBe(true);
    expect(isUnknownWriteOutcome(new errors.OperationTimedOutError('timed out', 'h'))).toBe(true);
    expect(isUnknownWriteOutcome(new errors.NoHostAvailableError({}))).toBe(true);
    // Refused before the round started, or never valid: definitely not applied.
    expect(isUnknownWriteOutcome(response(RC.unavailableException))).toBe(false);
    expect(isUnknownWriteOutcome(response(RC.invalid))).toBe(false);
    expect(isUnknownWriteOutcome(new Error('boom'))).toBe(false);
  });

  it('builds the simulated CAS timeout exactly like the driver', () => {
    const err = simulatedCasWriteTimeout() as Error & { code: number; writeType: string };
    expect(err).toBeInstanceOf(errors.ResponseError);
    expect(err.code).toBe(RC.writeTimeout);
    expect(err.writeType).toBe('CAS');
  });
});
