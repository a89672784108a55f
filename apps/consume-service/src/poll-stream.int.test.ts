// PollStream (consume.proto): polls one after another on one bidirectional stream, each
// answered exactly as Poll answers it; draining ends idle streams at once and busy ones after
// their answer. The consume core runs on the real embedded store; versions are written by a
// second store instance, so the service learns of them through its change feed.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadQuireProto } from '@quire/proto';
import type { ConsumeServiceClient, PbPollRequest, PbPollResponseOutput } from '@quire/proto';
import { storeBackends, type StoreBackendConfig } from '@quire/test-servers';
import { createConsumeCore, createStores, type ConsumeCore, type Stores } from './app.ts';
import { createGrpcServer } from './grpc.ts';
import { createTopic, publishInline, until } from './testing.ts';

const backend = storeBackends('pollstream', () => inject('quireServers')).find((b) => b.name.startsWith('embedded'));
const proto = loadQuireProto().quire.v1;
const identity = { application: 'streams', instance: 'stream-1', region: 'region-a' };

/** A PollStream with a queue of the answers it got, and whether the service ended it. */
function openStream(client: ConsumeServiceClient) {
  const stream = client.PollStream();
  const answers: PbPollResponseOutput[] = [];
  const state = { ended: false, error: undefined as grpc.ServiceError | undefined };
  stream.on('data', (m: PbPollResponseOutput) => answers.push(m));
  stream.on('end', () => (state.ended = true));
  stream.on('error', (e: grpc.ServiceError) => (state.error = e));
  const next = async (count: number) => {
    await until(() => answers.length >= count, 10_000, `${count} answers on the stream`);
    return answers[count - 1] as PbPollResponseOutput;
  };
  return { stream, answers, state, next, send: (req: PbPollRequest) => stream.write(req) };
}

describe('PollStream on the embedded store', () => {
  let cfg: StoreBackendConfig;
  let mine: Stores;
  let other: Stores;
  let core: ConsumeCore;
  let server: grpc.Server;
  let client: ConsumeServiceClient;

  beforeAll(async () => {
    if (backend === undefined) throw new Error('no embedded backend');
    cfg = backend.config();
    mine = await createStores(cfg);
    other = await createStores(cfg);
    core = await createConsumeCore(mine.store, mine.blobs, { cacheRefreshMs: 60_000, changePollMs: 50, fleetFlushMs: 60_000 });
    server = createGrpcServer(core.service);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new proto.ConsumeService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    server?.forceShutdown();
    await core?.close();
    await other?.close();
    await mine?.close();
    cfg?.cleanup?.();
  });

  it('answers each poll on the stream as Poll would: an immediate one, then a held one woken by a publish', async () => {
    const topic = 'streams.a';
    await createTopic(other.store, topic);
    const v1 = await publishInline(other.store, topic, 'one');
    await until(() => core.cache.get(topic) !== undefined, 5000, 'topic in the cache');
    const s = openStream(client);
    try {
      s.send({ identity, subscriptions: [{ topic, knownVersion: '0' }], waitMs: 0 });
      const first = await s.next(1);
      expect(first.updates.map((u) => [u.topic, Number(u.version?.version), u.inlineData.toString()])).toEqual([[topic, v1.version, 'one']]);
      // The same stream, a held poll: answered by the next publish, not before.
      s.send({ identity, subscriptions: [{ topic, knownVersion: String(v1.version), appliedVersion: String(v1.version) }], waitMs: 20_000 });
      await until(() => core.service.heldPolls === 1, 5000, 'the poll held');
      expect(s.answers).toHaveLength(1);
      const v2 = await publishInline(other.store, topic, 'two');
      const second = await s.next(2);
      expect(second.updates.map((u) => [Number(u.version?.version), u.inlineData.toString()])).toEqual([[v2.version, 'two']]);
      // Its answer is Poll's answer to the same request.
      const unary = await new Promise<PbPollResponseOutput>((resolve, reject) =>
        client.Poll({ identity, subscriptions: [{ topic, knownVersion: String(v1.version) }], waitMs: 0 }, (err, res) => (err ? reject(err) : resolve(res as PbPollResponseOutput))),
      );
      expect(second).toEqual(unary);
      // An unknown topic is an error in the answer, the stream goes on.
      s.send({ identity, subscriptions: [{ topic: 'streams.nope', knownVersion: '0' }], waitMs: 0 });
      const third = await s.next(3);
      expect(third.errors.map((e) => [e.topic, e.errorCode])).toEqual([['streams.nope', 'NOT_FOUND']]);
      expect(s.state).toEqual({ ended: false, error: undefined });
    } finally {
      s.stream.cancel();
    }
  });

  it('draining answers the held poll, then ends its stream, and ends idle streams at once', async () => {
    const topic = 'streams.drain';
    await createTopic(other.store, topic);
    const v1 = await publishInline(other.store, topic, 'one');
    await until(() => core.cache.get(topic) !== undefined, 5000, 'topic in the cache');
    const busy = openStream(client);
    const idle = openStream(client);
    idle.send({ identity, subscriptions: [{ topic, knownVersion: '0' }], waitMs: 0 });
    await idle.next(1);
    busy.send({ identity, subscriptions: [{ topic, knownVersion: String(v1.version) }], waitMs: 20_000 });
    await until(() => core.service.heldPolls === 1, 5000, 'the poll held');
    core.service.drain();
    const drained = await busy.next(1);
    expect(drained.updates).toEqual([]);
    expect(drained.nextPollMs).toBeGreaterThan(0);
    await until(() => busy.state.ended && idle.state.ended, 5000, 'both streams ended by the service');
    expect([busy.state.error, idle.state.error]).toEqual([undefined, undefined]);
    expect(idle.answers).toHaveLength(1);
  });
});
