import * as grpc from '@grpc/grpc-js';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ANONYMOUS_ACTOR, grpcActor, restActor } from './auth.ts';

const rest = (headers: Record<string, string | string[] | undefined>) => restActor({ headers } as unknown as FastifyRequest);
function grpcMd(value?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (value !== undefined) md.set('x-quire-actor', value);
  return md;
}

describe('the actor of a call', () => {
  it('is the x-quire-actor header / metadata, the first one when repeated', () => {
    expect(rest({ 'x-quire-actor': 'alice' })).toBe('alice');
    expect(rest({ 'x-quire-actor': ['bob', 'eve'] })).toBe('bob');
    expect(grpcActor(grpcMd('carol'))).toBe('carol');
  });

  it('is "anonymous" when absent or empty, on both transports alike', () => {
    expect(ANONYMOUS_ACTOR).toBe('anonymous');
    for (const h of [{}, { 'x-quire-actor': '' }, { 'x-quire-actor': [] }]) expect(rest(h)).toBe(ANONYMOUS_ACTOR);
    expect(grpcActor(grpcMd())).toBe(ANONYMOUS_ACTOR);
    expect(grpcActor(grpcMd(''))).toBe(ANONYMOUS_ACTOR);
  });
});
