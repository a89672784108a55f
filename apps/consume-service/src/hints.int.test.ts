// Change hints (ADR 0009) with the services as real processes on Cassandra + S3, access
// control on. The consume services read the change feed only every 10 minutes and never do
// a full refresh during the test (1 h), so a held long-poll answered with the new version
// within its 30 s wait was woken by the hint, not by the change poll. Also: the hint
// stream reconnects after the publish service is killed and restarted; with the publish
// endpoint unreachable the change feed alone still delivers; a token limited to some
// prefixes only hears of those topics.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadQuireProto } from '@quire/proto';
import type { AdminServiceClient, ChangeHintServiceClient, ConsumeServiceClient, PbChangeHintOutput, PbPollResponseOutput, PublishServiceClient } from '@quire/proto';
import { issueToken } from '@quire/service-kit';
import { freePort, startQuireProcess, quireTestStores, type QuireProcess } from '@quire/test-servers';
import { createStores } from './app.ts';

const { cassandra, s3 } = inject('quireServers');
const testStores = quireTestStores({ cassandra, s3 }, 'hints');
const keyspace = testStores.keyspace;
const env = {
  ...testStores.env,
  QUIRE_LOG_LEVEL: 'warn',
  QUIRE_AUTH: 'on',
};
/** The change poll cannot run during a test, nor the full refresh: only a hint wakes the cache. */
const SLOW_FEED = { QUIRE_CHANGE_POLL_MS: '600000', QUIRE_CACHE_REFRESH_MS: '3600000' };

const proto = loadQuireProto().quire.v1;
const procs: QuireProcess[] = [];
let publishProc: QuireProcess;
let publishPort: number;
let adminToken: string;
let viewerToken: string;
let limitedToken: string;

const md = (token: string): grpc.Metadata => {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
};

async function startPublish(): Promise<QuireProcess> {
  const p = await startQuireProcess('publish-service', { ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: String(publishPort) }, 120_000);
  procs.push(p);
  return p;
}

async function startConsume(extra: Record<string, string>): Promise<QuireProcess> {
  const p = await startQuireProcess('consume-service', { ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0', ...extra }, 120_000);
  procs.push(p);
  return p;
}

function publishClient(): PublishServiceClient {
  return new proto.PublishService(`127.0.0.1:${publishPort}`, grpc.credentials.createInsecure());
}

function call<T>(fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));
}

async function publish(topic: string, text: string): Promise<number> {
  const client = publishClient();
  try {
    const res = await call<{ version?: { version?: string } | null }>((cb) =>
      client.Publish({ options: { topic, contentType: 'text/plain' }, data: Buffer.from(text) }, md(adminToken), cb),
    );
    return Number(res.version?.version);
  } finally {
    client.close();
  }
}

async function createTopic(name: string): Promise<void> {
  const client = publishClient();
  try {
    await call((cb) => client.CreateTopic({ topic: { name, owner: 'hints' } }, md(adminToken), cb));
  } finally {
    client.close();
  }
}

/** One long-poll held up to `waitMs`, holding `known`. */
async function longPoll(consume: QuireProcess, topic: string, known: number, waitMs: number): Promise<PbPollResponseOutput> {
  const client: ConsumeServiceClient = new proto.ConsumeService(consume.grpcAddress, grpc.credentials.createInsecure());
  try {
    return await call<PbPollResponseOutput>((cb) =>
      client.Poll({ identity: { application: 'hints', instance: 'hints-1' }, subscriptions: [{ topic, knownVersion: String(known) }], waitMs }, md(adminToken), { deadline: Date.now() + waitMs + 20_000 }, cb),
    );
  } finally {
    client.close();
  }
}

/** A series' value on a service's /metrics (0 when absent). */
async function metric(p: QuireProcess, name: string): Promise<number> {
  const body = await (await fetch(`${p.httpUrl}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

async function until(fn: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  publishPort = await freePort();
  publishProc = await startPublish();
  // The publish service migrated the keyspace: register the tokens the test uses.
  const stores = await createStores({ metadataStore: { kind: 'cassandra', contactPoints: cassandra.contactPoints, port: cassandra.port, localDataCenter: cassandra.localDataCenter, keyspace, replicationFactor: 1 }, blobStore: { kind: 's3', regions: testStores.regions } });
  try {
    adminToken = (await issueToken(stores.store, { name: 'hints-admin', role: 'admin' }, 'test')).secret;
    viewerToken = (await issueToken(stores.store, { name: 'consume-hints', role: 'viewer' }, 'test')).secret;
    limitedToken = (await issueToken(stores.store, { name: 'hints-a-only', role: 'consumer', prefixes: ['hints.a.'] }, 'test')).secret;
  } finally {
    await stores.close();
  }
  // Topics exist before the consume services start (their first full refresh loads them).
  for (const t of ['hints.prompt', 'hints.restart', 'hints.nohint', 'hints.a.one', 'hints.b.one']) await createTopic(t);
  for (const t of ['hints.prompt', 'hints.restart', 'hints.nohint']) await publish(t, 'v1');
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
});

describe('change hints from the publish service to the consume services', () => {
  it('wakes a held long-poll although the change feed is read only every 10 minutes', async () => {
    const consume = await startConsume({ ...SLOW_FEED, QUIRE_PUBLISH_HINT_ENDPOINTS: `127.0.0.1:${publishPort}`, QUIRE_PUBLISH_HINT_TOKEN: viewerToken });
    await until(async () => (await metric(consume, 'quire_change_hint_streams_connected')) === 1, 'the hint stream to open');
    const before = await metric(consume, 'quire_change_hints_received_total');
    const held = longPoll(consume, 'hints.prompt', 1, 30_000);
    await new Promise((r) => setTimeout(r, 300)); // the poll is held
    const v = await publish('hints.prompt', 'v2');
    const res = await held;
    expect(res.updates.map((u) => [u.topic, Number(u.version?.version)])).toEqual([['hints.prompt', v]]);
    expect(Buffer.from(res.updates[0]?.inlineData ?? []).toString()).toBe('v2');
    expect(await metric(consume, 'quire_change_hints_received_total')).toBeGreaterThan(before);
  });

  it('reconnects the hint stream after the publish service is killed and restarted', async () => {
    const consume = await startConsume({ ...SLOW_FEED, QUIRE_PUBLISH_HINT_ENDPOINTS: `127.0.0.1:${publishPort}`, QUIRE_PUBLISH_HINT_TOKEN: viewerToken });
    await until(async () => (await metric(consume, 'quire_change_hint_streams_connected')) === 1, 'the hint stream to open');
    await publishProc.kill();
    await until(async () => (await metric(consume, 'quire_change_hint_streams_connected')) === 0, 'the hint stream to close');
    publishProc = await startPublish();
    await until(async () => (await metric(consume, 'quire_change_hint_streams_connected')) === 1, 'the hint stream to reopen');
    const before = await metric(consume, 'quire_change_hints_received_total');
    const held = longPoll(consume, 'hints.restart', 1, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const v = await publish('hints.restart', 'v2');
    const res = await held;
    expect(res.updates.map((u) => [u.topic, Number(u.version?.version)])).toEqual([['hints.restart', v]]);
    expect(await metric(consume, 'quire_change_hints_received_total')).toBeGreaterThan(before);
  });

  it('without hints (publish endpoint unreachable) the change feed still delivers', async () => {
    const nobody = await freePort();
    const consume = await startConsume({ QUIRE_CHANGE_POLL_MS: '150', QUIRE_PUBLISH_HINT_ENDPOINTS: `127.0.0.1:${nobody}`, QUIRE_PUBLISH_HINT_TOKEN: viewerToken });
    const held = longPoll(consume, 'hints.nohint', 1, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    const v = await publish('hints.nohint', 'v2');
    const res = await held;
    expect(res.updates.map((u) => [u.topic, Number(u.version?.version)])).toEqual([['hints.nohint', v]]);
    expect(await metric(consume, 'quire_change_hint_streams_connected')).toBe(0);
    expect(await metric(consume, 'quire_change_hints_received_total')).toBe(0);
  });

  it('PollStream with access control: refused without a token; a limited token gets its topics and an error for the others, on one stream', async () => {
    const consume = await startConsume({ QUIRE_CHANGE_POLL_MS: '150', QUIRE_PUBLISH_HINT_ENDPOINTS: `127.0.0.1:${publishPort}`, QUIRE_PUBLISH_HINT_TOKEN: viewerToken });
    const a = await publish('hints.a.one', 'a-stream');
    const client: ConsumeServiceClient = new proto.ConsumeService(consume.grpcAddress, grpc.credentials.createInsecure());
    try {
      const refused = await new Promise<grpc.ServiceError>((resolve) => {
        const s = client.PollStream();
        s.on('data', () => {});
        s.on('error', resolve);
        s.write({ identity: { application: 'hints', instance: 'anon' }, subscriptions: [{ topic: 'hints.a.one', knownVersion: '0' }], waitMs: 0 });
      });
      expect(refused.code).toBe(grpc.status.UNAUTHENTICATED);

      const stream = client.PollStream(md(limitedToken));
      const answers: PbPollResponseOutput[] = [];
      stream.on('data', (m: PbPollResponseOutput) => answers.push(m));
      const request = { identity: { application: 'hints', instance: 'limited' }, subscriptions: [{ topic: 'hints.a.one', knownVersion: '0' }, { topic: 'hints.b.one', knownVersion: '0' }], waitMs: 0 };
      stream.write(request);
      await until(async () => answers.length === 1, 'the first answer', 20_000);
      // The same stream, again: each request is filtered.
      stream.write(request);
      await until(async () => answers.length === 2, 'the second answer', 20_000);
      for (const res of answers) {
        expect(res.updates.map((u) => [u.topic, Number(u.version?.version)])).toEqual([['hints.a.one', a]]);
        expect(res.errors.map((e) => [e.topic, e.errorCode])).toEqual([['hints.b.one', 'PERMISSION_DENIED']]);
      }
      // Only refused topics: the stream ends with PERMISSION_DENIED.
      const denied = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
      stream.write({ ...request, subscriptions: [{ topic: 'hints.b.one', knownVersion: '0' }] });
      expect((await denied).code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      client.close();
    }
  });

  it('PollStream is not grandfathered: once its token expires, the next request on the open stream ends it with UNAUTHENTICATED', async () => {
    const consume = await startConsume({ QUIRE_CHANGE_POLL_MS: '150', QUIRE_PUBLISH_HINT_ENDPOINTS: `127.0.0.1:${publishPort}`, QUIRE_PUBLISH_HINT_TOKEN: viewerToken });
    await createTopic('hints.a.expiry');
    await publish('hints.a.expiry', 'e1');
    const admin: AdminServiceClient = new proto.AdminService(`127.0.0.1:${publishPort}`, grpc.credentials.createInsecure());
    const client: ConsumeServiceClient = new proto.ConsumeService(consume.grpcAddress, grpc.credentials.createInsecure());
    try {
      const expiresAt = Date.now() + 8000;
      const created = await call<{ tokenString: string }>((cb) =>
        admin.CreateToken({ name: 'stream-expiring', role: 'consumer', prefixes: ['hints.a.'], expiresAt: String(expiresAt) }, md(adminToken), cb),
      );
      const stream = client.PollStream(md(created.tokenString));
      const answers: PbPollResponseOutput[] = [];
      stream.on('data', (m: PbPollResponseOutput) => answers.push(m));
      const ended = new Promise<grpc.ServiceError>((resolve) => stream.on('error', resolve));
      const request = { identity: { application: 'hints', instance: 'expiring' }, subscriptions: [{ topic: 'hints.a.expiry', knownVersion: '0' }], waitMs: 0 };
      stream.write(request);
      await until(async () => answers.length === 1, 'the first answer', 20_000);
      expect(answers[0]?.updates.map((u) => u.topic)).toEqual(['hints.a.expiry']);
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt + 100 - Date.now())));
      stream.write(request);
      const err = await ended;
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err.details).toMatch(/expired token/);
      expect(answers).toHaveLength(1);
    } finally {
      client.close();
      admin.close();
    }
  });

  it('WatchChanges: refused without a token; a token limited to prefixes hears only of its topics', async () => {
    const client: ChangeHintServiceClient = new proto.ChangeHintService(`127.0.0.1:${publishPort}`, grpc.credentials.createInsecure());
    try {
      const refused = await new Promise<grpc.ServiceError>((resolve) => {
        const s = client.WatchChanges({ watcher: 'anonymous' });
        s.on('data', () => {});
        s.on('error', resolve);
      });
      expect(refused.code).toBe(grpc.status.UNAUTHENTICATED);

      const hints: PbChangeHintOutput[] = [];
      const stream = client.WatchChanges({ watcher: 'limited' }, md(limitedToken));
      const ended = new Promise<void>((resolve) => stream.on('error', () => resolve()));
      await new Promise<void>((resolve) =>
        stream.on('data', (h: PbChangeHintOutput) => {
          hints.push(h);
          resolve();
        }),
      );
      expect(hints[0]?.topic).toBe(''); // connected
      await publish('hints.b.one', 'b'); // not covered: no hint
      await publish('hints.a.one', 'a');
      await until(async () => hints.some((h) => h.topic === 'hints.a.one'), 'the hint of hints.a.one', 20_000);
      expect(hints.map((h) => h.topic).filter((t) => t !== '')).not.toContain('hints.b.one');
      expect(hints.every((h) => h.replica !== '')).toBe(true);
      stream.cancel();
      await ended;
    } finally {
      client.close();
    }
  });
});
