// Why a response schema can never silently drop a field: every answer is validated
// against its route's schema before fastify serializes it (through the schema, which
// would drop unknown fields), and a mismatch is a 500, not a partial answer.
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { installApiDocs } from '@quire/observability';
import { installErrorHandlers, objectSchema } from '@quire/service-kit';

async function app() {
  const a = Fastify();
  installErrorHandlers(a);
  await installApiDocs(a, { title: 't', description: 'd' });
  const response = { 200: objectSchema({ name: { type: 'string' }, size: { type: 'integer' } }, ['name']) };
  a.get('/ok', { schema: { response } }, async () => ({ name: 'x', size: 1 }));
  a.get('/extra', { schema: { response } }, async () => ({ name: 'x', size: 1, deletedAt: 5 }));
  a.get('/missing', { schema: { response } }, async () => ({ size: 1 }));
  a.get('/wrong-type', { schema: { response } }, async () => ({ name: 'x', size: '1' }));
  return a;
}

describe('response validation', () => {
  it('passes an answer that matches its schema', async () => {
    const a = await app();
    const res = await a.inject('/ok');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: 'x', size: 1 });
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it.each(['/extra', '/missing', '/wrong-type'])('answers 500 INTERNAL for %s instead of a silently changed body', async (path) => {
    const a = await app();
    const res = await a.inject(path);
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
  });

  it('documents the routes with their response schemas', async () => {
    const a = await app();
    await a.ready();
    const doc = a.swagger() as unknown as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths['/ok']?.['get']?.responses ?? {})).toEqual(['200', '4XX', '5XX']);
  });
});
