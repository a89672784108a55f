// Access control against the real services: the publish and consume services as separate
// processes (QUIRE_AUTH=on) on a real Cassandra (own keyspace) and the two s3proxy regions.
// Each role does exactly what it should on REST and gRPC, and nothing more; calls without a
// token, with a malformed, a revoked or an expired one are refused; refusals are audited; and no token
// appears in what the processes print.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Role } from '@quire/core';
import { loadQuireProto } from '@quire/proto';
import { issueToken } from '@quire/service-kit';
import { startQuireProcess, quireTestStores, type QuireProcess } from '@quire/test-servers';
import { createStores, type Stores } from './app.ts';
import { loadConfig } from './config.ts';

const testStores = quireTestStores(inject('quireServers'), 'auth');
const env = {
  ...testStores.env,
  // info: every request is logged, so the "no token in the logs" check means something.
  QUIRE_LOG_LEVEL: 'info',
  QUIRE_AUTH: 'on',
  // Read the token on every call: a revocation is visible to the other process at once.
  QUIRE_AUTH_CACHE_MS: '0',
};

const PAY = 'auth.pay.config';
const OTHER = 'auth.other.config';
let publishProc: QuireProcess;
let consumeProc: QuireProcess;
let stores: Stores;
const tokens: Record<string, string> = {};
let pubClient: grpc.Client;
let adminClient: grpc.Client;
let consumeClient: grpc.Client;

beforeAll(async () => {
  publishProc = await startQuireProcess('publish-service', { ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' });
  consumeProc = await startQuireProcess('consume-service', { ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0', QUIRE_CACHE_REFRESH_MS: '200' });
  // The first admin token goes straight into the store (as the quickstart does); every other through the API.
  stores = await createStores(loadConfig(env));
  tokens.admin = (await issueToken(stores.store, { name: 'root', role: 'admin' }, 'test-bootstrap')).secret;
  const proto = loadQuireProto().quire.v1;
  pubClient = new proto.PublishService(publishProc.grpcAddress, grpc.credentials.createInsecure());
  adminClient = new proto.AdminService(publishProc.grpcAddress, grpc.credentials.createInsecure());
  consumeClient = new proto.ConsumeService(consumeProc.grpcAddress, grpc.credentials.createInsecure());

  for (const name of [PAY, OTHER]) {
    expect((await rest('POST', '/v1/topics', tokens.admin, { name, owner: 'team' })).status).toBe(201);
    expect((await rest('POST', `/v1/topics/${name}/versions`, tokens.admin, { data: `v1 of ${name}` })).status).toBe(201);
  }
  const roles: Array<[Role, string[]]> = [
    ['operator', ['auth.pay.']],
    ['publisher', ['auth.pay.']],
    ['consumer', ['auth.pay.']],
    ['viewer', ['auth.pay.']],
  ];
  for (const [role, prefixes] of roles) {
    const res = await rest('POST', '/v1/tokens', tokens.admin, { name: `${role}-bot`, role, prefixes });
    expect(res.status).toBe(201);
    tokens[role] = (res.body as { tokenString: string }).tokenString;
  }
}, 120_000);

afterAll(async () => {
  for (const c of [pubClient, adminClient, consumeClient]) c?.close();
  await stores?.close();
  const codes = await Promise.all([publishProc?.stop(), consumeProc?.stop()]);
  expect(codes).toEqual([0, 0]);
});

async function rest(method: string, path: string, token: string | undefined, body?: unknown, base = publishProc.httpUrl): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // raw bytes (data routes)
  }
  return { status: res.status, body: parsed };
}

type Method = (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => unknown;

/** A unary call: the gRPC status code (0 = OK) and the answer. */
function call(client: grpc.Client, name: string, req: unknown, token: string | undefined): Promise<{ code: number; res?: unknown; details?: string }> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, Method>)[name] as Method;
    fn.call(client, req, md, (err, res) => resolve(err ? { code: err.code, details: err.details } : { code: 0, res }));
  });
}

/** What each role may do, as one REST call and one gRPC call per action, on topic `t`. */
function operations(t: string) {
  return {
    read: {
      rest: (token: string) => rest('GET', `/v1/topics/${t}`, token),
      grpc: (token: string) => call(pubClient, 'GetTopic', { name: t }, token),
    },
    publish: {
      rest: (token: string) => rest('POST', `/v1/topics/${t}/versions`, token, { data: 'new' }),
      grpc: (token: string) => call(pubClient, 'Publish', { options: { topic: t }, data: Buffer.from('new') }, token),
    },
    operate: {
      rest: (token: string) => rest('POST', `/v1/topics/${t}/pins`, token, { version: 1, scope: { region: 'eu' }, reason: 'test' }),
      grpc: (token: string) => call(pubClient, 'Pin', { topic: t, version: '1', scope: { attributes: { region: 'us' } }, reason: 'test' }, token),
    },
    consume: {
      rest: (token: string) => rest('GET', `/v1/topics/${t}/versions/1/data`, token, undefined, consumeProc.httpUrl),
      grpc: (token: string) => call(consumeClient, 'ReadInline', { topic: t, version: '1' }, token),
    },
    manage: {
      rest: (token: string) => rest('PATCH', `/v1/topics/${t}`, token, { description: 'changed' }),
      grpc: (token: string) => call(pubClient, 'UpdateTopic', { topic: { name: t, description: 'changed' }, updateMask: ['description'] }, token),
    },
  };
}

const EXPECTED: Record<Role, string[]> = {
  admin: ['read', 'publish', 'operate', 'consume', 'manage'],
  operator: ['read', 'operate'],
  publisher: ['read', 'publish'],
  consumer: ['read', 'consume'],
  viewer: ['read'],
};

describe('access control on REST and gRPC (QUIRE_AUTH=on)', () => {
  for (const role of Object.keys(EXPECTED) as Role[]) {
    it(`${role}: exactly ${EXPECTED[role].join(', ')} on its prefix, nothing on another topic, on REST and gRPC`, async () => {
      const token = tokens[role]!;
      for (const [action, op] of Object.entries(operations(PAY))) {
        const r = await op.rest(token);
        const g = await op.grpc(token);
        if (EXPECTED[role].includes(action)) {
          expect(r.status, `${role} ${action} REST: ${JSON.stringify(r.body)}`).toBeLessThan(300);
          expect(g.code, `${role} ${action} gRPC: ${g.details}`).toBe(grpc.status.OK);
        } else {
          expect(r.status, `${role} ${action} REST`).toBe(403);
          expect((r.body as { error: { code: string } }).error.code).toBe('PERMISSION_DENIED');
          expect(g.code, `${role} ${action} gRPC`).toBe(grpc.status.PERMISSION_DENIED);
        }
      }
      // Another prefix: everything refused, except for the admin.
      for (const [action, op] of Object.entries(operations(OTHER))) {
        const r = await op.rest(token);
        const g = await op.grpc(token);
        if (role === 'admin') {
          expect(r.status, `admin ${action} REST`).toBeLessThan(300);
          expect(g.code).toBe(grpc.status.OK);
        } else {
          expect([r.status, g.code], `${role} ${action} on ${OTHER}`).toEqual([403, grpc.status.PERMISSION_DENIED]);
        }
      }
      // Token administration: admins only.
      const list = await rest('GET', '/v1/tokens', token);
      const listed = await call(adminClient, 'ListTokens', {}, token);
      expect([list.status, listed.code]).toEqual(role === 'admin' ? [200, grpc.status.OK] : [403, grpc.status.PERMISSION_DENIED]);
    });
  }

  it('listing topics shows each token only the topics it may read, on REST and gRPC', async () => {
    const names = (body: unknown) => ((body as { topics: Array<{ name: string }> }).topics ?? []).map((t) => t.name).filter((n) => n.startsWith('auth.')).sort();
    for (const [role, expected] of [
      ['admin', [OTHER, PAY]],
      ['viewer', [PAY]],
      ['publisher', [PAY]],
    ] as const) {
      expect(names((await rest('GET', '/v1/topics?limit=1000', tokens[role])).body), role).toEqual(expected);
      expect(names((await call(pubClient, 'ListTopics', { limit: 1000 }, tokens[role])).res), role).toEqual(expected);
    }
  });

  it('refuses calls without a token, with a malformed or unknown one: 401 / UNAUTHENTICATED', async () => {
    const bogus = 'quire_0123456789abcdef_' + 'x'.repeat(43);
    for (const token of [undefined, 'not-a-token', bogus]) {
      expect((await rest('GET', `/v1/topics/${PAY}`, token)).status).toBe(401);
      expect((await rest('POST', '/v1/poll', token, { subscriptions: [{ topic: PAY }] }, consumeProc.httpUrl)).status).toBe(401);
      expect((await call(pubClient, 'GetTopic', { name: PAY }, token)).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await call(consumeClient, 'Poll', { subscriptions: [{ topic: PAY }] }, token)).code).toBe(grpc.status.UNAUTHENTICATED);
    }
    // Health checks stay open.
    expect((await rest('GET', '/healthz', undefined)).status).toBe(200);
  });

  it('a revoked token is refused on both services, REST and gRPC', async () => {
    const created = await call(adminClient, 'CreateToken', { name: 'short-lived', role: 'consumer', prefixes: ['auth.'] }, tokens.admin);
    expect(created.code).toBe(0);
    const { token, tokenString } = created.res as { token: { id: string }; tokenString: string };
    expect((await call(consumeClient, 'ReadInline', { topic: PAY, version: '1' }, tokenString)).code).toBe(grpc.status.OK);
    expect((await rest('POST', `/v1/tokens/${token.id}/revoke`, tokens.admin)).status).toBe(200);
    expect((await call(consumeClient, 'ReadInline', { topic: PAY, version: '1' }, tokenString)).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await rest('GET', `/v1/topics/${PAY}/versions/1/data`, tokenString, undefined, consumeProc.httpUrl)).status).toBe(401);
    expect((await call(pubClient, 'GetTopic', { name: PAY }, tokenString)).code).toBe(grpc.status.UNAUTHENTICATED);
    // Listed as revoked, never with a secret.
    const list = (await rest('GET', '/v1/tokens', tokens.admin)).body as { tokens: Array<Record<string, unknown>> };
    const listed = list.tokens.find((t) => t.id === token.id);
    expect(listed).toMatchObject({ name: 'short-lived', role: 'consumer', revokedBy: 'root' });
    expect(JSON.stringify(list)).not.toMatch(/secret|quire_[0-9a-f]{16}_/i);
  });

  it('a token with an expiry works until then and is refused after, on both services, REST and gRPC', async () => {
    // An expiry in the past, or not a time: refused, naming the field, nothing created.
    const before = ((await rest('GET', '/v1/tokens', tokens.admin)).body as { tokens: unknown[] }).tokens.length;
    const past = await rest('POST', '/v1/tokens', tokens.admin, { name: 'too-late', role: 'viewer', expiresAt: Date.now() - 1000 });
    expect(past.status).toBe(400);
    expect(past.body).toMatchObject({ error: { code: 'INVALID_ARGUMENT', field: 'expiresAt' } });
    const bad = await call(adminClient, 'CreateToken', { name: 'too-late', role: 'viewer', expiresAt: '-5' }, tokens.admin);
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(((await rest('GET', '/v1/tokens', tokens.admin)).body as { tokens: unknown[] }).tokens).toHaveLength(before);

    // Valid for a few seconds: long enough for a loaded machine to make three calls with it.
    const expiresAt = Date.now() + 8000;
    const created = await call(adminClient, 'CreateToken', { name: 'expiring', role: 'consumer', prefixes: ['auth.'], expiresAt: String(expiresAt) }, tokens.admin);
    expect(created.code).toBe(0);
    const { token, tokenString } = created.res as { token: { id: string; expiresAt: string }; tokenString: string };
    expect(Number(token.expiresAt)).toBe(expiresAt);
    const uses = async () => [
      (await call(consumeClient, 'ReadInline', { topic: PAY, version: '1' }, tokenString)).code,
      (await rest('GET', `/v1/topics/${PAY}/versions/1/data`, tokenString, undefined, consumeProc.httpUrl)).status,
      (await call(pubClient, 'GetTopic', { name: PAY }, tokenString)).code,
    ];
    expect(await uses()).toEqual([grpc.status.OK, 200, grpc.status.OK]);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now() + 50)));
    expect(await uses()).toEqual([grpc.status.UNAUTHENTICATED, 401, grpc.status.UNAUTHENTICATED]);
    const refused = await rest('GET', `/v1/topics/${PAY}`, tokenString);
    expect(refused.body).toMatchObject({ error: { code: 'UNAUTHENTICATED', message: expect.stringContaining('expired token') } });
    // Listed with its expiry; the refusal is audited like any other.
    const listed = ((await rest('GET', '/v1/tokens', tokens.admin)).body as { tokens: Array<Record<string, unknown>> }).tokens.find((t) => t.id === token.id);
    expect(listed).toMatchObject({ name: 'expiring', expiresAt });
    expect(listed?.revokedAt).toBeUndefined();
  });

  it('a poll serves the topics the token covers and refuses the others in its errors', async () => {
    const subs = [{ topic: PAY }, { topic: OTHER }];
    const g = await call(consumeClient, 'Poll', { identity: { application: 'checkout', instance: 'i-1' }, subscriptions: subs }, tokens.consumer);
    expect(g.code).toBe(0);
    const res = g.res as { updates: Array<{ topic: string }>; errors: Array<{ topic: string; errorCode: string }> };
    expect(res.updates.map((u) => u.topic)).toEqual([PAY]);
    expect(res.errors).toEqual([expect.objectContaining({ topic: OTHER, errorCode: 'PERMISSION_DENIED' })]);
    const r = await rest('POST', '/v1/poll', tokens.consumer, { identity: { application: 'checkout', instance: 'i-1' }, subscriptions: subs }, consumeProc.httpUrl);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ updates: [{ topic: PAY }], errors: [{ topic: OTHER, code: 'PERMISSION_DENIED' }] });
    // Only refused topics: the poll itself is refused.
    expect((await call(consumeClient, 'Poll', { subscriptions: [{ topic: OTHER }] }, tokens.consumer)).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await call(consumeClient, 'Poll', { subscriptions: [{ topic: PAY }] }, tokens.viewer)).code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('a consumer token bound to an application polls only as it, and topics restrict applications', async () => {
    const bound = await rest('POST', '/v1/tokens', tokens.admin, { name: 'checkout-bot', role: 'consumer', prefixes: ['auth.'], application: 'checkout' });
    const t = (bound.body as { tokenString: string }).tokenString;
    expect((await call(consumeClient, 'Poll', { identity: { application: 'search', instance: 'i-2' }, subscriptions: [{ topic: PAY }] }, t)).code).toBe(grpc.status.PERMISSION_DENIED);
    const ok = await call(consumeClient, 'Poll', { identity: { instance: 'i-2' }, subscriptions: [{ topic: PAY }] }, t);
    expect((ok.res as { updates: unknown[] }).updates).toHaveLength(1);
    // The topic now admits only "billing": the same token's poll gets PERMISSION_DENIED for it.
    expect((await rest('PATCH', `/v1/topics/${PAY}`, tokens.admin, { allowedApplications: ['billing'] })).status).toBe(200);
    let errors: Array<{ errorCode: string }> = [];
    for (let i = 0; i < 100 && errors.length === 0; i++) {
      const again = await call(consumeClient, 'Poll', { identity: { instance: 'i-2' }, subscriptions: [{ topic: PAY }] }, t);
      errors = (again.res as { errors: Array<{ errorCode: string }> }).errors;
      if (errors.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(errors).toEqual([expect.objectContaining({ errorCode: 'PERMISSION_DENIED' })]);
    expect((await rest('PATCH', `/v1/topics/${PAY}`, tokens.admin, { allowedApplications: null })).status).toBe(200);
  });

  it('refusals are audited with the token id, never the token', async () => {
    const page = await rest('GET', '/v1/audit?action=access.denied&limit=500', tokens.admin);
    expect(page.status).toBe(200);
    const entries = (page.body as { entries: Array<{ actor: string; topic?: string; details: Record<string, unknown> }> }).entries;
    expect(entries.some((e) => e.actor === 'viewer-bot' && e.topic === PAY && e.details.code === 'PERMISSION_DENIED' && e.details.via === 'grpc')).toBe(true);
    expect(entries.some((e) => e.actor === 'viewer-bot' && e.details.via === 'rest')).toBe(true);
    expect(entries.some((e) => e.actor === 'anonymous' && e.details.code === 'UNAUTHENTICATED')).toBe(true);
    expect(entries.some((e) => e.details.method === 'quire.v1.ConsumeService/Poll')).toBe(true);
    expect(JSON.stringify(entries)).not.toMatch(/quire_[0-9a-f]{16}_/);
    // The audited actor of allowed calls is the token's name, not a self-declared header.
    const pub = await rest('GET', `/v1/audit?topic=${PAY}&action=publish&limit=100`, tokens.admin);
    expect((pub.body as { entries: Array<{ actor: string }> }).entries.map((e) => e.actor)).toContain('publisher-bot');
  });

  it('no token appears in what the services print', async () => {
    const printed = publishProc.output() + consumeProc.output();
    expect(printed).toMatch(/"url":"\/v1\/topics/); // requests were logged
    for (const [role, t] of Object.entries(tokens)) {
      expect(printed.includes(t), `${role} token in the logs`).toBe(false);
      expect(printed.includes(t.slice(-43)), `${role} secret in the logs`).toBe(false);
    }
    expect(printed).not.toMatch(/Bearer /i);
  });
});
