// The consume service as a separate process on the embedded store: this test process
// writes versions through its own store instance, long-polls over REST and gRPC, then
// sends SIGTERM while a long-poll is held and checks that it is answered before exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadQuireProto } from '@quire/proto';
import type { ConsumeServiceClient, PbPollRequest, PbPollResponseOutput } from '@quire/proto';
import { createStores, type Stores } from './app.ts';
import { createTopic, publishInline } from './testing.ts';

const APP_DIR = fileURLToPath(new URL('..', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

describe('consume-service process (embedded store)', () => {
  let dir: string;
  let stores: Stores;
  let child: ChildProcess;
  let output = '';
  let httpUrl: string;
  let grpcAddress: string;
  let client: ConsumeServiceClient;
  let exited: Promise<number | null>;
  const topic = 'proc.devices';
  const identity = { instance: 'proc-1', region: 'local', application: 'tests' };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quire-consume-proc-'));
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    stores = await createStores({
      metadataStore: { kind: 'embedded', path: join(dir, 'quire.sqlite') },
      blobStore: { kind: 'fs', regions: [{ name: 'local', dir: join(dir, 'blobs', 'local') }] },
    });
    await createTopic(stores.store, topic);
    await publishInline(stores.store, topic, 'v1');

    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('QUIRE_') && v !== undefined) env[k] = v;
    Object.assign(env, {
      QUIRE_DATA_DIR: dir,
      QUIRE_CONSUME_HTTP_PORT: String(httpPort),
      QUIRE_CONSUME_GRPC_PORT: String(grpcPort),
      QUIRE_LOG_LEVEL: 'warn',
      QUIRE_CHANGE_POLL_MS: '100',
    });
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: APP_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const listening = new Promise<RegExpMatchArray>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString('utf8');
        const m = /quire consume-service listening: rest (\S+) grpc (\S+)/.exec(output);
        if (m) resolve(m);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`consume-service exited with ${code}:\n${output}`)));
    });
    const m = await listening;
    [httpUrl, grpcAddress] = [m[1] as string, m[2] as string];
    expect(httpUrl).toBe(`http://127.0.0.1:${httpPort}`);
    const Ctor = loadQuireProto().quire.v1.ConsumeService;
    client = new Ctor(grpcAddress, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await stores?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const restPoll = async (knownVersion: number, waitMs: number) => {
    const res = await fetch(`${httpUrl}/v1/poll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ identity, subscriptions: [{ topic, knownVersion }], waitMs }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { updates: Array<{ version: { version: number }; inlineData?: string }>; stale: boolean };
  };
  const grpcPoll = (req: PbPollRequest) =>
    new Promise<PbPollResponseOutput>((resolve, reject) =>
      client.Poll(req, { deadline: Date.now() + 20_000 }, (err, res) => (err || !res ? reject(err ?? new Error('no response')) : resolve(res))),
    );

  it('long-polls over REST and gRPC receive versions committed by another process', async () => {
    expect((await restPoll(0, 0)).updates.map((u) => u.version.version)).toEqual([1]);

    const held = restPoll(1, 15_000);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await publishInline(stores.store, topic, 'v2');
    const rest = await held;
    console.log(`[consume-service] process REST long-poll answered ${Date.now() - t0} ms after the commit`);
    expect(rest.updates.map((u) => [u.version.version, Buffer.from(u.inlineData ?? '', 'base64').toString()])).toEqual([[2, 'v2']]);

    const heldGrpc = grpcPoll({ identity, subscriptions: [{ topic, knownVersion: 2 }], waitMs: 15_000 });
    await new Promise((r) => setTimeout(r, 200));
    const t1 = Date.now();
    await publishInline(stores.store, topic, 'v3');
    const g = await heldGrpc;
    console.log(`[consume-service] process gRPC long-poll answered ${Date.now() - t1} ms after the commit`);
    expect(g.updates.map((u) => [u.version?.version, u.via, u.inlineData.toString()])).toEqual([['3', 'release', 'v3']]);

    // History over gRPC.
    const unary = <Res>(fn: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => void) =>
      new Promise<Res>((resolve, reject) => fn((err, res) => (err || res === undefined ? reject(err ?? new Error('no response')) : resolve(res))));
    const list = await unary<{ versions: Array<{ version: string }> }>((cb) => client.ListVersions({ topic, limit: 2 }, cb));
    expect(list.versions.map((v) => v.version)).toEqual(['3', '2']);
    const inline = await unary<{ data: Buffer; sha256: string }>((cb) => client.ReadInline({ topic, version: 2 }, cb));
    expect(inline.data.toString()).toBe('v2');
    const at = await unary<{ version: string }>((cb) => client.VersionAt({ topic, at: Date.now(), identity }, cb));
    expect(at.version).toBe('3');

    // Bad input over gRPC: INVALID_ARGUMENT with the field in the trailers.
    const err = await grpcPoll({ identity: { region: 'x' }, subscriptions: [{ topic }] }).then(
      () => undefined,
      (e: unknown) => e as grpc.ServiceError,
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.metadata.get('x-quire-field')).toEqual(['identity.instance']);
  });

  it('REST: history routes, health, and errors that name the field', async () => {
    const get = async (path: string) => {
      const res = await fetch(`${httpUrl}${path}`);
      return { status: res.status, type: res.headers.get('content-type'), body: res.headers.get('content-type')?.includes('json') ? ((await res.json()) as Record<string, unknown>) : await res.text() };
    };
    const list = await get(`/v1/topics/${topic}/versions?limit=2`);
    expect(list.status).toBe(200);
    expect((list.body as { versions: Array<{ version: number }>; nextCursor?: string }).versions.map((v) => v.version)).toEqual([3, 2]);
    expect((list.body as { nextCursor?: string }).nextCursor).toEqual(expect.any(String));
    expect(((await get(`/v1/topics/${topic}/versions/2`)).body as { metadata: unknown }).metadata).toEqual({ text: 'v2' });
    expect(await get(`/v1/topics/${topic}/versions/1/data`)).toMatchObject({ status: 200, body: 'v1' });
    const at = await get(`/v1/topics/${topic}/at/${new Date().toISOString()}?instance=proc-1&application=tests`);
    expect((at.body as { version: number }).version).toBe(3);
    expect(await get('/healthz')).toMatchObject({ status: 200, body: { ok: true, stale: false, topics: 1 } });

    const post = async (body: unknown) => {
      const res = await fetch(`${httpUrl}/v1/poll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { error: { code: string; field?: string } } };
    };
    const sub = [{ topic, knownVersion: 0 }];
    expect(await post({ identity, subscriptions: sub, waitMs: 60_001 })).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ARGUMENT', field: 'waitMs' } } });
    const many = Array.from({ length: 501 }, (_, i) => ({ topic: `t.${i}` }));
    expect(await post({ identity, subscriptions: many })).toMatchObject({ status: 429, body: { error: { code: 'RESOURCE_EXHAUSTED', field: 'subscriptions' } } });
    expect(await post({ identity, subscriptions: [{ topic: 'bad topic!' }] })).toMatchObject({ status: 400, body: { error: { field: 'subscriptions[0].topic' } } });
    expect(await post({ identity, subscriptions: [{ topic, knownVersion: 'x' }] })).toMatchObject({ status: 400, body: { error: { field: 'subscriptions[0].knownVersion' } } });
    expect(await get('/v1/topics/no.such/versions/1')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND', field: 'topic' } } });
  });

  it('SIGTERM answers a held long-poll before the process exits', async () => {
    const held = restPoll(3, 30_000);
    const deadline = Date.now() + 5000;
    for (;;) {
      const h = (await (await fetch(`${httpUrl}/healthz`)).json()) as { heldPolls: number; stale: boolean };
      if (h.heldPolls > 0) break;
      if (Date.now() > deadline) throw new Error('the poll was never held');
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = Date.now();
    child.kill('SIGTERM');
    const answer = await held;
    expect(answer.updates).toEqual([]);
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    console.log(`[consume-service] drained on SIGTERM; exited ${Date.now() - t0} ms after the signal`);
  });
});
