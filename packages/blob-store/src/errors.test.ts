// The two error tables (S3 / Node errno → QuireError codes), checked case by case.
import { describe, expect, it } from 'vitest';
import { Code } from '@quire/core';
import { fsError } from './fs.ts';
import { s3Error } from './s3.ts';

/** An error shaped like the AWS SDK's service exceptions. */
function awsError(name: string, status?: number): Error {
  return Object.assign(new Error(name), { name, $metadata: status === undefined ? {} : { httpStatusCode: status } });
}
function errno(code: string): Error {
  return Object.assign(new Error(code), { code });
}

describe('s3Error', () => {
  it.each([
    [awsError('NoSuchKey', 404), Code.NOT_FOUND],
    [awsError('NotFound', 404), Code.NOT_FOUND],
    [awsError('UnknownError', 404), Code.NOT_FOUND],
    [awsError('NoSuchBucket', 404), Code.FAILED_PRECONDITION],
    [awsError('AccessDenied', 403), Code.PERMISSION_DENIED],
    [awsError('SignatureDoesNotMatch', 403), Code.PERMISSION_DENIED],
    [awsError('Whatever', 403), Code.PERMISSION_DENIED],
    [errno('ECONNREFUSED'), Code.UNAVAILABLE],
    [errno('ECONNRESET'), Code.UNAVAILABLE],
    [errno('ETIMEDOUT'), Code.UNAVAILABLE],
    [errno('EPIPE'), Code.UNAVAILABLE],
    [errno('ENOTFOUND'), Code.UNAVAILABLE],
    [awsError('TimeoutError'), Code.UNAVAILABLE],
    [awsError('SlowDown', 503), Code.UNAVAILABLE],
    [awsError('InternalError', 500), Code.UNAVAILABLE],
    [awsError('Unknown', 502), Code.UNAVAILABLE],
    [awsError('EntityTooSmall', 400), Code.INTERNAL],
    [new Error('boom'), Code.INTERNAL],
    ['not even an error', Code.INTERNAL],
  ])('%s → %s', (err, code) => {
    const q = s3Error(err, 'region r: op');
    expect(q.code).toBe(code);
    expect(q.cause).toBe(err);
    expect(q.message).toMatch(/^region r: op: /);
  });
});

describe('fsError', () => {
  it.each([
    ['ENOENT', Code.NOT_FOUND],
    ['EACCES', Code.PERMISSION_DENIED],
    ['EPERM', Code.PERMISSION_DENIED],
    ['EROFS', Code.FAILED_PRECONDITION],
    ['ENOSPC', Code.RESOURCE_EXHAUSTED],
    ['EDQUOT', Code.RESOURCE_EXHAUSTED],
    ['EMFILE', Code.RESOURCE_EXHAUSTED],
    ['EIO', Code.UNAVAILABLE],
    ['ESTALE', Code.UNAVAILABLE],
    ['ENOTDIR', Code.FAILED_PRECONDITION],
    ['EISDIR', Code.FAILED_PRECONDITION],
    ['ENAMETOOLONG', Code.INVALID_ARGUMENT],
    ['EWHATEVER', Code.INTERNAL],
  ])('%s → %s', (code, expected) => {
    const err = errno(code);
    const q = fsError(err, 'region r: op');
    expect(q.code).toBe(expected);
    expect(q.cause).toBe(err);
  });
});
