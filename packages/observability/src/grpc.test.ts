// gRPC per-call metrics (grpcCallMetrics): a grpc-js server on loopback with the interceptor,
// a raw-bytes service (no .proto needed): calls are counted by method and status code when
// they end, unary calls are timed, a stream cancelled by its client counts as CANCELLED.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcCallMetrics } from './grpc.ts';
import { createMetrics } from './metrics.ts';
import { metricValue, parseMetrics } from './testing.ts';

const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const definition: grpc.ServiceDefinition = {
  Echo: { path: '/t.Test/Echo', requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
  Ticks: { path: '/t.Test/Ticks', requestStream: false, responseStream: true, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize },
};

describe('grpcCallMetrics', () => {
  const metrics = createMetrics('consume');
  const server = new grpc.Server({ interceptors: [grpcCallMetrics(metrics)] });
  let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  beforeAll(async () => {
    server.addService(definition, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        if (call.request.toString() === 'missing') cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
        else cb(null, call.request);
      },
      Ticks: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        call.write(Buffer.from('tick'));
        // Never ends on its own: the client cancels.
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const Client = grpc.makeGenericClientConstructor(definition, 'Test');
    client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as typeof client;
  });
  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  const echo = (text: string): Promise<grpc.ServiceError | null> =>
    new Promise((resolve) => (client['Echo'] as (req: Buffer, cb: (e: grpc.ServiceError | null) => void) => void)(Buffer.from(text), (e) => resolve(e)));

  it('counts calls by method and code, times unary calls, and counts a cancelled stream once as CANCELLED', async () => {
    expect(await echo('a')).toBeNull();
    expect(await echo('b')).toBeNull();
    expect((await echo('missing'))?.code).toBe(grpc.status.NOT_FOUND);

    const stream = (client['Ticks'] as (req: Buffer) => grpc.ClientReadableStream<Buffer>)(Buffer.from('go'));
    stream.on('error', () => {});
    await new Promise((resolve) => stream.once('data', resolve));
    stream.cancel();
    const samples = async () => parseMetrics((await metrics.scrape()).body);
    for (let i = 0; i < 100 && metricValue(await samples(), 'quire_grpc_calls_total', { method: '/t.Test/Ticks', code: 'CANCELLED' }) === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }

    const s = await samples();
    expect(metricValue(s, 'quire_grpc_calls_total', { method: '/t.Test/Echo', code: 'OK' })).toBe(2);
    expect(metricValue(s, 'quire_grpc_calls_total', { method: '/t.Test/Echo', code: 'NOT_FOUND' })).toBe(1);
    expect(metricValue(s, 'quire_grpc_calls_total', { method: '/t.Test/Ticks', code: 'CANCELLED' })).toBe(1);
    expect(metricValue(s, 'quire_grpc_call_duration_seconds_count', { method: '/t.Test/Echo' })).toBe(3);
    // Streams are counted, not timed.
    expect(metricValue(s, 'quire_grpc_call_duration_seconds_count', { method: '/t.Test/Ticks' })).toBeUndefined();
  });
});
