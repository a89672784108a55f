// The REST poll route's shared answers (fastify inject, in-memory stand-ins for the cache
// and the checker): polls given the same shared answer get byte-identical JSON, whether
// they come first, while the first is being serialized, or later; that JSON is what the
// route's own validation and serialization produce; sent from the kept JSON, an answer is
// byte for byte what fastify sends, counted and logged the same.
import { request } from 'node:http';
import { connect } from 'node:net';
import { Readiness, createMetrics, mountObservability } from '@quire/observability';
import { describe, expect, it } from 'vitest';
import { createRestServer } from './rest.ts';
import { memoryConsumeService, oneVersionState } from './testing.ts';

describe('REST poll answers', () => {
  it('shared answers: the same JSON for every poll, equal to the route serialization of a fresh answer', async () => {
    const states = new Map([['t.hot', oneVersionState('t.hot', 2, { note: 'x' })]]);
    const { service, cache } = memoryConsumeService(states);
    const app = await createRestServer(service, cache);
    try {
      const poll = (instance: string, knownVersion: number, extra: object[] = []) =>
        app.inject({ method: 'POST', url: '/v1/poll', payload: { identity: { instance }, subscriptions: [{ topic: 't.hot', knownVersion }, ...extra] } });
      // One update, no error: shared. Five polls at once (the first serializes, the others wait for it), then one more.
      const together = await Promise.all([1, 2, 3, 4, 5].map((i) => poll(`i-${i}`, 1)));
      const later = await poll('i-6', 0);
      const bodies = [...together, later].map((r) => [r.statusCode, r.headers['content-type'], r.body]);
      expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
      const answer = JSON.parse(later.body) as { updates: Array<{ topic: string; inlineData: string; version: { version: number; metadata: unknown } }>; errors: unknown[] };
      expect(answer.updates.map((u) => [u.topic, u.version.version, Buffer.from(u.inlineData, 'base64').toString(), u.version.metadata])).toEqual([['t.hot', 2, 'hello', { note: 'x' }]]);
      expect(answer.errors).toEqual([]);
      // Not shared (an error besides the update): serialized for this poll, same update JSON.
      const fresh = JSON.parse((await poll('i-7', 1, [{ topic: 'no.such' }])).body) as typeof answer;
      expect(fresh.updates).toEqual(answer.updates);
      expect(fresh.errors).toEqual([expect.objectContaining({ topic: 'no.such', code: 'NOT_FOUND' })]);
      // Nothing new: the shared no-change answer.
      const quiet = await Promise.all([poll('i-8', 2), poll('i-9', 2)]);
      expect(quiet.map((r) => JSON.parse(r.body))).toEqual([
        { updates: [], errors: [], nextPollMs: 0, stale: false },
        { updates: [], errors: [], nextPollMs: 0, stale: false },
      ]);
    } finally {
      await app.close();
      await service.close();
    }
  });
  it('a held REST poll whose client goes away is released; one answered is not disturbed by its connection closing', async () => {
    const states = new Map([['t.hot', oneVersionState('t.hot', 2)]]);
    const { service, cache, change } = memoryConsumeService(states);
    const app = await createRestServer(service, cache);
    const url = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    const until = async (what: () => boolean): Promise<void> => {
      while (!what()) await new Promise((r) => setTimeout(r, 10));
    };
    const hold = (instance: string) => {
      const body = JSON.stringify({ identity: { instance }, subscriptions: [{ topic: 't.hot', knownVersion: 2 }], waitMs: 60_000 });
      let answer: (v: { status: number; body: string }) => void = () => {};
      const answered = new Promise<{ status: number; body: string }>((resolve) => (answer = resolve));
      const req = request({ host: url.hostname, port: url.port, path: '/v1/poll', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => answer({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', () => {});
      req.end(body);
      return { req, answered };
    };
    try {
      const gone = hold('gone');
      const stays = hold('stays');
      await until(() => service.heldPolls === 2);
      gone.req.destroy();
      await until(() => service.heldPolls === 1);
      states.set('t.hot', oneVersionState('t.hot', 3));
      change('t.hot');
      const r = await stays.answered;
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as { updates: Array<{ version: { version: number } }> }).updates.map((u) => u.version.version)).toEqual([3]);
      expect(service.heldPolls).toBe(0);
    } finally {
      await app.close();
      await service.close();
    }
  });
  it('a shared answer sent from its kept JSON is what fastify sends: status, headers, body, request metrics and log line', async () => {
    const states = new Map([['t.hot', oneVersionState('t.hot', 2, { note: 'x' })]]);
    const { service, cache, change } = memoryConsumeService(states);
    const lines: Array<Record<string, unknown>> = [];
    const app = await createRestServer(service, cache, { logger: { level: 'info', stream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } } });
    const metrics = createMetrics('consume');
    mountObservability(app, { metrics, readiness: new Readiness({ checks: [] }) });
    const url = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    // The whole answer as written on the wire (status line, headers in order, body), its Date
    // header dropped (it changes by the second).
    const raw = (requestId: string, body: object): Promise<string> =>
      new Promise((resolve, reject) => {
        const text = JSON.stringify(body);
        const socket = connect(Number(url.port), url.hostname, () =>
          socket.write(`POST /v1/poll HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-request-id: ${requestId}\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`),
        );
        let out = '';
        socket.on('data', (d: Buffer) => (out += d.toString()));
        socket.on('end', () => resolve(out.replace(/\r\ndate: [^\r]*/i, '')));
        socket.on('error', reject);
      });
    const until = async (what: () => boolean): Promise<void> => {
      while (!what()) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      // The first poll given a shared answer goes through fastify (validated, serialized: its
      // JSON is kept); the next one is sent from the kept JSON.
      const first = await raw('req-1', { identity: { instance: 'a' }, subscriptions: [{ topic: 't.hot', knownVersion: 1 }] });
      const kept = await raw('req-2', { identity: { instance: 'b' }, subscriptions: [{ topic: 't.hot', knownVersion: 1 }] });
      expect(first).toMatch(/^HTTP\/1\.1 200 OK\r\ncontent-type: application\/json; charset=utf-8\r\nx-request-id: req-1\r\ncontent-length: \d+\r\n/);
      expect(kept).toBe(first.replace('req-1', 'req-2'));
      // Held polls woken by one change: the first answered serializes, the others get the kept JSON.
      const held = ['req-3', 'req-4', 'req-5'].map((id) => raw(id, { identity: { instance: id }, subscriptions: [{ topic: 't.hot', knownVersion: 2 }], waitMs: 60_000 }));
      await until(() => service.heldPolls === 3);
      states.set('t.hot', oneVersionState('t.hot', 3, { note: 'x' }));
      change('t.hot');
      const answers = await Promise.all(held);
      const body = (answers[0] as string).slice((answers[0] as string).indexOf('\r\n\r\n'));
      expect((JSON.parse(body) as { updates: Array<{ version: { version: number } }> }).updates.map((u) => u.version.version)).toEqual([3]);
      expect(answers.map((a, i) => a.replace(`req-${i + 3}`, 'req-n'))).toEqual(Array(3).fill((answers[0] as string).replace('req-3', 'req-n')));
      // Each answered poll counted once, with its route and status, and logged once with its id.
      const counted = (await metrics.httpRequests.get()).values.filter((v) => v.labels.route === '/v1/poll');
      expect(counted.map((v) => [v.labels.method, v.labels.status, v.value])).toEqual([['POST', '200', 5]]);
      const timed = (await metrics.httpDuration.get()).values.find((v) => v.metricName === 'quire_http_request_duration_seconds_count' && v.labels.route === '/v1/poll');
      expect(timed?.value).toBe(5);
      const completed = lines.filter((l) => l.msg === 'request completed');
      expect(completed.map((l) => [l.requestId, (l.res as { statusCode: number }).statusCode]).sort()).toEqual(['req-1', 'req-2', 'req-3', 'req-4', 'req-5'].map((id) => [id, 200]));
    } finally {
      await app.close();
      await service.close();
    }
  });
});
