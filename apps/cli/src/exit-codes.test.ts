import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { EXIT, EXIT_CODES_HELP, errorJson, exitCodeOf, formatError } from './exit-codes.ts';

describe('exit codes', () => {
  it('maps every code to the documented status', () => {
    const expected: Record<Code, number> = {
      CANCELLED: 1,
      INVALID_ARGUMENT: 2,
      DEADLINE_EXCEEDED: 5,
      NOT_FOUND: 3,
      ALREADY_EXISTS: 4,
      PERMISSION_DENIED: 6,
      RESOURCE_EXHAUSTED: 2,
      FAILED_PRECONDITION: 4,
      ABORTED: 4,
      UNIMPLEMENTED: 1,
      INTERNAL: 1,
      UNAVAILABLE: 5,
      DATA_LOSS: 1,
      UNAUTHENTICATED: 6,
    };
    for (const code of Object.values(Code)) expect([code, exitCodeOf(new QuireError(code, 'x'))]).toEqual([code, expected[code]]);
  });

  it('exits 1 on anything that is not a QuireError', () => {
    expect(exitCodeOf(new Error('boom'))).toBe(EXIT.UNEXPECTED);
    expect(exitCodeOf('boom')).toBe(EXIT.UNEXPECTED);
  });

  it('documents each status in the help text', () => {
    for (const n of Object.values(EXIT)) expect(EXIT_CODES_HELP).toMatch(new RegExp(`^  ${n}  `, 'm'));
  });

  it('prints errors as "quire: <message> (field: x)"', () => {
    expect(formatError(QuireError.invalid('meta', '"x" is not key=value'))).toBe('quire: meta: "x" is not key=value (field: meta)');
    expect(formatError(new QuireError(Code.NOT_FOUND, 'topic a.b not found'))).toBe('quire: topic a.b not found');
    expect(formatError(new Error('boom'))).toBe('quire: boom');
    expect(JSON.parse(errorJson(QuireError.notFound('topic a.b', 'topic')))).toEqual({
      error: { code: 'NOT_FOUND', message: 'topic a.b not found', field: 'topic', exitCode: 3 },
    });
  });
});
