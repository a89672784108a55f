/**
 * gRPC transport: `quire.v1.ConsumeService` on grpc-js. Handlers map the request, call
 * `ConsumeService`, map the result; errors go through `grpcErrorOf`. A held Poll is
 * aborted when the client cancels (or disconnects).
 */
import * as grpc from '@grpc/grpc-js';
import { QuireError } from '@quire/core';
import { loadQuireProto, versionDescriptorToPb } from '@quire/proto';
import type { ConsumeServiceHandlers, PbConsumerIdentityOutput, PbPollRequestOutput, PbPollResponse, PbVersionDescriptor } from '@quire/proto';
import { grpcFailure } from '@quire/service-kit';
import { PollCancel, isSharedAnswer, type ConsumeService, type PollResult, type VersionView } from './service.ts';
import { pollAnswered } from './diagnostics.ts';

export interface GrpcServerOptions {
  /** Server interceptors (per-call metrics: observability's `grpcCallMetrics`). */
  interceptors?: grpc.ServerInterceptor[];
  onError?: (err: unknown, method: string) => void;
  /** Largest message (inline payloads travel in Poll answers). Default 16 MiB. */
  maxMessageBytes?: number;
  /** Wraps the handlers before they are served (access control: `auth.ts`). */
  wrapHandlers?: (definition: grpc.ServiceDefinition, handlers: ConsumeServiceHandlers) => ConsumeServiceHandlers;
}

/** int64 from the wire ("123") → number; INVALID_ARGUMENT naming the field when it is not a safe integer. */
function int64(value: string | number, field: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) throw QuireError.invalid(field, `${String(value)} is not a safe integer`);
  return n;
}

/** A subscription's int64; the field name is built only for an error (this runs for every subscription of every poll). */
function subInt64(value: string | number, i: number, name: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isSafeInteger(n) ? n : int64(value, `subscriptions[${i}].${name}`);
}

/** Proto3 has no "unset": empty strings are absent. */
function identityFromPb(i: PbConsumerIdentityOutput | null): Record<string, unknown> | undefined {
  if (i === null) return undefined;
  return { region: i.region, application: i.application, cluster: i.cluster, instance: i.instance, attributes: i.attributes };
}


export function versionToPb(v: VersionView): PbVersionDescriptor {
  return versionDescriptorToPb(v, v.scopes);
}

/** Protobuf forms of shared answers (service.ts `isSharedAnswer`), built once. */
const sharedPb = new WeakMap<PollResult, PbPollResponse>();
/** Those protobuf forms, whose encoding the service definition keeps. */
const sharedPbValues = new WeakSet<object>();

function pollToPb(r: PollResult): PbPollResponse {
  if (!isSharedAnswer(r)) return pollToPbFresh(r);
  let pb = sharedPb.get(r);
  if (pb === undefined) {
    pb = pollToPbFresh(r);
    sharedPb.set(r, pb);
    sharedPbValues.add(pb);
  }
  return pb;
}

function pollToPbFresh(r: PollResult): PbPollResponse {
  return {
    updates: r.updates.map((u) => ({
      topic: u.topic,
      version: versionToPb(u.version),
      inlineData: u.inlineData === undefined ? Buffer.alloc(0) : Buffer.from(u.inlineData.buffer, u.inlineData.byteOffset, u.inlineData.byteLength),
      via: u.via,
    })),
    errors: r.errors.map((e) => ({ topic: e.topic, errorCode: e.code, errorMessage: e.message })),
    nextPollMs: r.nextPollMs,
    stale: r.stale,
  };
}

/** Size of the messages ReadData streams. */
const DATA_CHUNK_BYTES = 1024 * 1024;

export function createGrpcServer(service: ConsumeService, options: GrpcServerOptions = {}): grpc.Server {
  const max = options.maxMessageBytes ?? 16 * 1024 * 1024;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': max, 'grpc.max_send_message_length': max, 'grpc.enable_channelz': 0, interceptors: options.interceptors ?? [] });
  const fail = grpcFailure(options.onError);
  function unary<Req, Res>(method: string, fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      Promise.resolve()
        .then(() => fn(call.request, call))
        .then(
          (res) => callback(null, res),
          (err: unknown) => callback(fail(method, err)),
        );
    };
  }

  /** One (long-)poll, as Poll and PollStream answer it; `cancel` ends a held one early. */
  const answerPoll = async (req: PbPollRequestOutput, cancel: PollCancel | undefined): Promise<PbPollResponse> => {
    const result = await service.poll(
      {
        identity: identityFromPb(req.identity),
        subscriptions: req.subscriptions.map((s, i) => ({
          topic: s.topic,
          knownVersion: subInt64(s.knownVersion, i, 'knownVersion'),
          appliedVersion: subInt64(s.appliedVersion, i, 'appliedVersion'),
          failedVersion: subInt64(s.failedVersion, i, 'failedVersion'),
          error: s.error,
        })),
        waitMs: req.waitMs,
      },
      cancel,
    );
    const pb = pollToPb(result);
    if (pollAnswered.hasSubscribers && req.waitMs > 0 && result.updates.length > 0) pollAnswered.publish(result);
    return pb;
  };

  const handlers: ConsumeServiceHandlers = {
    Poll: unary('Poll', async (req, call) => {
      let cancel: PollCancel | undefined;
      if (req.waitMs > 0) {
        // Cancel a held poll when the client cancels or goes away.
        const c = new PollCancel();
        call.on('cancelled', () => c.abort());
        cancel = c;
      }
      return answerPoll(req, cancel);
    }),
    // Polls one after another on one stream (the client sends the next after reading an
    // answer). Access control filters each request (auth.ts) and may add errors to an
    // answer (it wraps the stream's write). Draining: the answer is written, then the stream ends.
    PollStream: (call) => {
      let cancel: PollCancel | undefined;
      let gone = false;
      let ended = false;
      let idle = true;
      // Draining: a stream waiting for its next poll ends now (the consumer re-opens one,
      // elsewhere); one in a poll ends after its answer.
      const endIfIdle = (): void => {
        if (!idle || gone || ended) return;
        ended = true;
        call.end();
      };
      const unlisten = service.onDrain(endIfIdle);
      call.on('cancelled', () => {
        gone = true;
        cancel?.abort();
      });
      void (async () => {
        try {
          for await (const message of call) {
            if (ended || gone) break;
            idle = false;
            const req = message as PbPollRequestOutput;
            cancel = req.waitMs > 0 ? new PollCancel() : undefined;
            const pb = await answerPoll(req, cancel);
            cancel = undefined;
            idle = true;
            if (gone) return;
            call.write(pb);
            if (service.closing) {
              // End our side now: leaving the loop would destroy the stream before its status is sent.
              ended = true;
              call.end();
            }
          }
          if (!gone && !ended) call.end();
          ended = true;
        } catch (err) {
          if (!gone && !ended) call.emit('error', fail('PollStream', err));
          ended = true;
        } finally {
          unlisten();
        }
      })();
    },
    GetVersion: unary('GetVersion', async (req) =>
      versionToPb(await service.getVersion(req.topic, int64(req.version, 'version'), identityFromPb(req.identity))),
    ),
    ListVersions: unary('ListVersions', async (req) => {
      const page = await service.listVersions(req.topic, { limit: req.limit, cursor: req.cursor, ascending: req.ascending });
      return { versions: page.items.map(versionToPb), nextCursor: page.next ?? '' };
    }),
    VersionAt: unary('VersionAt', async (req) => versionToPb(await service.versionAt(req.topic, int64(req.at, 'at'), identityFromPb(req.identity)))),
    ReadInline: unary('ReadInline', async (req) => {
      const r = await service.readInline(req.topic, int64(req.version, 'version'));
      return { data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength), sha256: r.sha256, contentType: r.contentType };
    }),
    // Server streaming with backpressure: a chunk is read from the blob only when the
    // previous one left the gRPC write buffer.
    ReadData: (call) => {
      void (async () => {
        try {
          const { record, body } = await service.openData(call.request.topic, int64(call.request.version, 'version'), call.request.region || undefined);
          call.on('cancelled', () => body.destroy());
          let first = true;
          for await (const chunk of body) {
            const buf = chunk as Buffer;
            for (let off = 0; off < buf.length; off += DATA_CHUNK_BYTES) {
              const msg = { data: buf.subarray(off, off + DATA_CHUNK_BYTES), ...(first ? { size: record.size, sha256: record.sha256 } : {}) };
              first = false;
              if (!call.write(msg)) await new Promise((res) => call.once('drain', res));
            }
          }
          if (first) call.write({ data: Buffer.alloc(0), size: record.size, sha256: record.sha256 });
          call.end();
        } catch (err) {
          call.emit('error', fail('ReadData', err));
        }
      })();
    },
  };
  const loaded = loadQuireProto().quire.v1.ConsumeService.service;
  // Poll answers shared by many polls are encoded once: the bytes are kept by message object.
  const encodePoll = loaded.Poll.responseSerialize;
  const encoded = new WeakMap<object, Buffer>();
  const responseSerialize = (msg: PbPollResponse): Buffer => {
    const known = encoded.get(msg);
    if (known !== undefined) return known;
    const bytes = encodePoll(msg);
    if (sharedPbValues.has(msg)) encoded.set(msg, bytes);
    return bytes;
  };
  const definition: grpc.ServiceDefinition = {
    ...loaded,
    Poll: { ...loaded.Poll, responseSerialize },
    PollStream: { ...loaded.PollStream, responseSerialize },
  };
  server.addService(definition, options.wrapHandlers ? options.wrapHandlers(definition, handlers) : handlers);
  return server;
}
