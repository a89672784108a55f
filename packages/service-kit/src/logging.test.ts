// The services' logger configuration: pino (through fastify) writes JSON lines, and
// credentials in logged objects are replaced by `[redacted]`.
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { fastifyLogger } from './rest.ts';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>>; text: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString('utf8');
      cb();
    },
  });
  return { stream, text: () => out, lines: () => out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('fastifyLogger', () => {
  it('is off when silent', () => {
    expect(fastifyLogger('silent')).toBe(false);
  });

  it('redacts authorization headers, tokens and S3 secrets in logged objects', async () => {
    const logger = fastifyLogger('info');
    if (logger === false) throw new Error('expected a logger');
    const out = capture();
    const app = Fastify({ logger: { ...logger, stream: out.stream } });
    app.log.info({ request: { headers: { authorization: 'Bearer tok-1', 'x-quire-token': 'tok-2', cookie: 'tok-3', accept: 'json' } } }, 'request');
    app.log.info({ req: { method: 'GET', url: '/x', headers: { authorization: 'Bearer tok-8' } } }, 'serialized');
    app.log.info({ headers: { authorization: 'Bearer tok-4' } }, 'headers');
    app.log.info({ token: 'tok-5', region: { name: 'a', secretAccessKey: 'tok-6' }, config: { regions: { a: { secretAccessKey: 'tok-7' } } } }, 'objects');
    await app.close();
    const text = out.text();
    for (const i of [1, 2, 3, 4, 5, 6, 8]) expect(text).not.toContain(`tok-${i}`);
    const [req] = out.lines();
    expect(req).toMatchObject({ level: 30, msg: 'request', request: { headers: { authorization: '[redacted]', 'x-quire-token': '[redacted]', accept: 'json' } } });
  });
});
