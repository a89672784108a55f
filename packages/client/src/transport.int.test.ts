// StreamCaller (transport.ts) against a real grpc-js server speaking quire.v1.ConsumeService's
// PollStream, scripted per request: each request answered in turn on one stream, and every
// way a request in flight can end otherwise (its deadline, the service ending the stream, a
// service error, our cancel, close()), each followed by a request on a new stream.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure } from './testing.ts';
import { Code } from '@quire/core';
import { loadQuireProto, type ConsumeServiceClient, type PbPollRequestOutput, type PbPollResponseOutput } from '@quire/proto';
import { StreamCaller, type Cancellable } from './transport.ts';

const proto = loadQuireProto().quire.v1;
let server: grpc.Server;
let client: ConsumeServiceClient;
/** Streams the service saw opened. */
let opened = 0;

/** What the service does with a request: named by its first subscription's topic. */
function script(call: grpc.ServerDuplexStream<PbPollRequestOutput, unknown>, req: PbPollRequestOutput): void {
  const topic = req.subscriptions[0]?.topic ?? '';
  if (topic === 'answer') call.write({ nextPollMs: req.waitMs, errors: [{ topic, errorCode: 'NOT_FOUND', errorMessage: `stream ${opened}` }] });
  else if (topic === 'end') call.end();
  else if (topic === 'fail') {
    const metadata = new grpc.Metadata();
    metadata.set('x-quire-field', 'subscriptions');
    call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'too many subscriptions', metadata });
  }
  // 'hang': no answer.
}

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(proto.ConsumeService.service, {
    PollStream: (call: grpc.ServerDuplexStream<PbPollRequestOutput, unknown>) => {
      opened++;
      call.on('data', (req: PbPollRequestOutput) => script(call, req));
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  client = new proto.ConsumeService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

const req = (topic: string, waitMs = 0) => ({ subscriptions: [{ topic, knownVersion: '0' }], waitMs });

describe('StreamCaller', () => {
  it('answers requests one after another on one stream, each with its own answer', async () => {
    const caller = new StreamCaller('PollStream');
    const before = opened;
    try {
      for (const waitMs of [1, 2, 3]) {
        const res = await caller.call<PbPollResponseOutput>(client, req('answer', waitMs), { timeoutMs: 10_000 });
        expect(Number(res.nextPollMs)).toBe(waitMs);
      }
      expect(opened - before).toBe(1);
    } finally {
      caller.close();
    }
  });

  it('fails a request with no answer in time DEADLINE_EXCEEDED, then opens a new stream', async () => {
    const caller = new StreamCaller('PollStream');
    const before = opened;
    try {
      const err = await failure(caller.call(client, req('hang'), { timeoutMs: 200 }));
      expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
      expect(err.message).toContain('200 ms');
      const res = await caller.call<PbPollResponseOutput>(client, req('answer', 7), { timeoutMs: 10_000 });
      expect(Number(res.nextPollMs)).toBe(7);
      expect(opened - before).toBe(2);
    } finally {
      caller.close();
    }
  });

  it('fails a request whose stream the service ends UNAVAILABLE, and a service error with its code and field', async () => {
    const caller = new StreamCaller('PollStream');
    const before = opened;
    try {
      await caller.call(client, req('answer'), { timeoutMs: 10_000 });
      const ended = await failure(caller.call(client, req('end'), { timeoutMs: 10_000 }));
      expect(ended.code).toBe(Code.UNAVAILABLE);
      const failed = await failure(caller.call(client, req('fail'), { timeoutMs: 10_000 }));
      expect([failed.code, failed.field, failed.message]).toEqual([Code.RESOURCE_EXHAUSTED, 'subscriptions', 'too many subscriptions']);
      await caller.call(client, req('answer'), { timeoutMs: 10_000 });
      expect(opened - before).toBe(3);
    } finally {
      caller.close();
    }
  });

  it('cancels the request in flight through onCall and through close(), CANCELLED', async () => {
    const caller = new StreamCaller('PollStream');
    const before = opened;
    let handle: Cancellable | undefined;
    const held = caller.call(client, req('hang'), { timeoutMs: 10_000, onCall: (c) => (handle = c) });
    handle?.cancel();
    expect((await failure(held)).code).toBe(Code.CANCELLED);
    const res = await caller.call<PbPollResponseOutput>(client, req('answer', 5), { timeoutMs: 10_000 });
    expect(Number(res.nextPollMs)).toBe(5);
    const closing = caller.call(client, req('hang'), { timeoutMs: 10_000 });
    caller.close();
    expect((await failure(closing)).code).toBe(Code.CANCELLED);
    expect(opened - before).toBe(2);
  });
});
