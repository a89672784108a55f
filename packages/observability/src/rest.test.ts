// The REST side of observability on a real fastify app (inject): request loggers made only
// when a line is written (the access log at info is as before, with requestId), and the
// request metrics counted by the (callback) onResponse hook.
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.ts';
import type { Readiness } from './readiness.ts';
import { REQUEST_ID_HEADER, REQUEST_ID_OPTIONS, RequestLogger, mountObservability } from './rest.ts';

function appAt(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
  const app = Fastify({ ...REQUEST_ID_OPTIONS, logger: { level, stream, redact: { paths: ['req.headers.authorization'], censor: '[redacted]' } } });
  const materialized: boolean[] = [];
  app.get('/quiet', async (req) => {
    req.log.info('an info line');
    req.log.debug('a debug line');
    materialized.push((req.log as unknown as RequestLogger).materialized);
    return { ok: true };
  });
  app.get('/loud', async (req) => {
    req.log.warn({ what: 'x' }, 'a warning');
    return { ok: true };
  });
  return { app, lines, materialized };
}

describe('REST observability', () => {
  it('at warn: no request logger is made for a request that logs nothing at an enabled level; a warning still carries requestId', async () => {
    const { app, lines, materialized } = appAt('warn');
    const quiet = await app.inject({ method: 'GET', url: '/quiet', headers: { [REQUEST_ID_HEADER]: 'r-1' } });
    expect(quiet.statusCode).toBe(200);
    expect(materialized).toEqual([false]);
    expect(lines).toEqual([]);
    await app.inject({ method: 'GET', url: '/loud', headers: { [REQUEST_ID_HEADER]: 'r-2' } });
    expect(lines).toEqual([expect.objectContaining({ level: 40, requestId: 'r-2', what: 'x', msg: 'a warning' })]);
    await app.close();
  });

  it('at info: the access log (incoming request, request completed) and the route lines, each with requestId', async () => {
    const { app, lines } = appAt('info');
    await app.inject({ method: 'GET', url: '/quiet', headers: { [REQUEST_ID_HEADER]: 'r-3', authorization: 'Bearer secret' } });
    expect(lines.map((l) => [l.msg, l.requestId])).toEqual([
      ['incoming request', 'r-3'],
      ['an info line', 'r-3'],
      ['request completed', 'r-3'],
    ]);
    expect(lines[2]).toEqual(expect.objectContaining({ res: { statusCode: 200 }, responseTime: expect.any(Number) }));
    expect(JSON.stringify(lines)).not.toContain('secret');
    await app.close();
  });

  it('at debug, a level set on the request logger and child loggers work through the lazy logger', async () => {
    const { app, lines } = appAt('debug');
    app.get('/child', async (req) => {
      expect(req.log.level).toBe('debug');
      req.log.child({ part: 'p' }).info('from a child');
      return { ok: true };
    });
    await app.inject({ method: 'GET', url: '/quiet', headers: { [REQUEST_ID_HEADER]: 'r-4' } });
    await app.inject({ method: 'GET', url: '/child', headers: { [REQUEST_ID_HEADER]: 'r-5' } });
    expect(lines.filter((l) => l.msg === 'a debug line').map((l) => l.requestId)).toEqual(['r-4']);
    expect(lines.filter((l) => l.msg === 'from a child')).toEqual([expect.objectContaining({ requestId: 'r-5', part: 'p' })]);
    await app.close();
  });

  it('counts every answered request by method, route and status, and its duration', async () => {
    const metrics = createMetrics('consume');
    const app = Fastify({ ...REQUEST_ID_OPTIONS, logger: false });
    app.get('/x/:id', async () => ({ ok: true }));
    app.get('/fail', async (_req, reply) => reply.status(400).send({ error: 'no' }));
    mountObservability(app, { metrics, readiness: {} as Readiness });
    for (const url of ['/x/1', '/x/2', '/fail', '/nowhere']) await app.inject({ method: 'GET', url });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/quire_http_requests_total\{method="GET",route="\/x\/:id",status="200",service="consume"\} 2/);
    expect(text).toMatch(/quire_http_requests_total\{method="GET",route="\/fail",status="400",service="consume"\} 1/);
    expect(text).toMatch(/quire_http_requests_total\{method="GET",route="unmatched",status="404",service="consume"\} 1/);
    expect(text).toMatch(/quire_http_request_duration_seconds_count\{service="consume",method="GET",route="\/x\/:id"\} 2/);
    await app.close();
  });
});
