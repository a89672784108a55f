import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { FIELD_TRAILER, grpcErrorOf, httpErrorOf } from './errors.ts';

describe('error mapping', () => {
  it('maps a QuireError to HTTP and gRPC with its field', () => {
    const err = QuireError.invalid('metadata.k', 'value must be a string');
    expect(httpErrorOf(err)).toEqual({
      status: 400,
      internal: false,
      body: { error: { code: 'INVALID_ARGUMENT', message: 'metadata.k: value must be a string', field: 'metadata.k' } },
    });
    const g = grpcErrorOf(err);
    expect(g.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(g.metadata?.get(FIELD_TRAILER)).toEqual(['metadata.k']);
    expect(httpErrorOf(QuireError.notFound('topic x', 'topic')).status).toBe(404);
    expect(grpcErrorOf(new QuireError(Code.FAILED_PRECONDITION, 'x')).code).toBe(grpc.status.FAILED_PRECONDITION);
  });

  it('maps fastify validation and parser errors to the same body', () => {
    const validation = Object.assign(new Error('body/scopes/0/a must be string'), {
      statusCode: 400,
      code: 'FST_ERR_VALIDATION',
      validationContext: 'body',
      validation: [{ instancePath: '/scopes/0/a', params: {}, message: 'must be string' }],
    });
    expect(httpErrorOf(validation).body.error).toEqual({ code: 'INVALID_ARGUMENT', field: 'scopes[0].a', message: 'scopes[0].a: must be string' });
    const missing = Object.assign(new Error('x'), { validation: [{ instancePath: '', params: { missingProperty: 'name' }, message: "must have required property 'name'" }] });
    expect(httpErrorOf(missing).body.error.field).toBe('name');
    const media = Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' });
    expect(httpErrorOf(media)).toMatchObject({ status: 415, body: { error: { code: 'INVALID_ARGUMENT', field: 'content-type' } } });
    const json = Object.assign(new SyntaxError('Unexpected end'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' });
    expect(httpErrorOf(json)).toMatchObject({ status: 400, body: { error: { field: 'body' } } });
  });

  it('hides unknown errors behind a 500 / INTERNAL', () => {
    const res = httpErrorOf(new Error('password=hunter2 at db.ts:42'));
    expect(res).toMatchObject({ status: 500, internal: true, body: { error: { code: 'INTERNAL', message: 'internal error' } } });
    expect(grpcErrorOf(new TypeError('secret')).details).toBe('internal error');
  });
});
