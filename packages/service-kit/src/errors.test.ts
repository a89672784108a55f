import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { Code, QuireError } from '@quire/core';
import { CODE_TRAILER, FIELD_TRAILER, grpcErrorOf, grpcFailure, httpErrorOf } from './errors.ts';

/** The one table, spelled out: code → [HTTP status, gRPC status]. */
const TABLE: Record<Code, [number, grpc.status]> = {
  CANCELLED: [499, grpc.status.CANCELLED],
  INVALID_ARGUMENT: [400, grpc.status.INVALID_ARGUMENT],
  DEADLINE_EXCEEDED: [504, grpc.status.DEADLINE_EXCEEDED],
  NOT_FOUND: [404, grpc.status.NOT_FOUND],
  ALREADY_EXISTS: [409, grpc.status.ALREADY_EXISTS],
  PERMISSION_DENIED: [403, grpc.status.PERMISSION_DENIED],
  RESOURCE_EXHAUSTED: [429, grpc.status.RESOURCE_EXHAUSTED],
  FAILED_PRECONDITION: [412, grpc.status.FAILED_PRECONDITION],
  ABORTED: [409, grpc.status.ABORTED],
  UNIMPLEMENTED: [501, grpc.status.UNIMPLEMENTED],
  INTERNAL: [500, grpc.status.INTERNAL],
  UNAVAILABLE: [503, grpc.status.UNAVAILABLE],
  DATA_LOSS: [500, grpc.status.DATA_LOSS],
  UNAUTHENTICATED: [401, grpc.status.UNAUTHENTICATED],
};

describe('error mapping', () => {
  it.each(Object.values(Code))('maps %s to its HTTP and gRPC status, body and trailers', (code) => {
    const [http, status] = TABLE[code];
    const err = new QuireError(code, 'topic: went wrong', { field: 'topic' });
    const message = code === Code.INTERNAL ? 'internal error' : 'topic: went wrong';
    expect(httpErrorOf(err)).toEqual({ status: http, internal: http >= 500, body: { error: { code, message, field: 'topic' } } });
    const g = grpcErrorOf(err);
    expect([g.code, g.details]).toEqual([status, message]);
    expect(g.metadata?.get(CODE_TRAILER)).toEqual([code]);
    expect(g.metadata?.get(FIELD_TRAILER)).toEqual(['topic']);
  });

  it('leaves the field out of the body and trailers when the error has none', () => {
    const err = new QuireError(Code.ABORTED, 'lost the race');
    expect(httpErrorOf(err).body).toEqual({ error: { code: 'ABORTED', message: 'lost the race' } });
    expect(grpcErrorOf(err).metadata?.get(FIELD_TRAILER)).toEqual([]);
  });

  it('reports only our own gRPC failures to onError', () => {
    const seen: string[] = [];
    const fail = grpcFailure((_err, method) => seen.push(method));
    expect(fail('Publish', QuireError.invalid('topic', 'bad')).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fail('Poll', new Error('boom'))).toMatchObject({ code: grpc.status.INTERNAL, details: 'internal error' });
    expect(seen).toEqual(['Poll']);
  });

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
    const large = Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
    expect(httpErrorOf(large)).toMatchObject({ status: 413, body: { error: { code: 'RESOURCE_EXHAUSTED', field: 'body' } } });
  });

  it('hides unknown errors behind a 500 / INTERNAL', () => {
    const res = httpErrorOf(new Error('password=hunter2 at db.ts:42'));
    expect(res).toMatchObject({ status: 500, internal: true, body: { error: { code: 'INTERNAL', message: 'internal error' } } });
    expect(grpcErrorOf(new TypeError('secret')).details).toBe('internal error');
  });
});
