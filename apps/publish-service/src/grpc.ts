/**
 * gRPC transport: `quire.v1.PublishService` on grpc-js. Handlers map the request with
 * `mapping.ts`, call `PublishService`, and map the result; errors go through
 * `grpcErrorOf`. Methods without a handler (PrepareUpload, rollouts until their handlers
 * are registered) answer UNIMPLEMENTED.
 */
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { QuireError } from '@quire/core';
import { loadQuireProto } from '@quire/proto';
import type { PbPublishChunkOutput, PublishServiceHandlers } from '@quire/proto';
import { grpcActor, grpcFailure } from '@quire/service-kit';
import {
  auditToPb,
  int64,
  locationFromPb,
  optionalScopeFromPb,
  pinToPb,
  publishOptionsFromPb,
  releaseToPb,
  scopeFromPb,
  topicSettingsFromPb,
  topicToPb,
  versionToPb,
} from './mapping.ts';
import { runToPb } from './grpc-rollouts.ts';
import type { PublishResult, PublishService } from './service.ts';


export interface GrpcServerOptions {
  /** Server interceptors (per-call metrics: observability's `grpcCallMetrics`). */
  interceptors?: grpc.ServerInterceptor[];
  /** Called with unexpected (5xx-like) errors. */
  onError?: (err: unknown, method: string) => void;
  /** Largest single message (Publish carries its data in one). Default 16 MiB. */
  maxMessageBytes?: number;
  /** More handlers (rollouts: `rolloutGrpcHandlers`), spread over the built-in ones. */
  extraHandlers?: Partial<PublishServiceHandlers>;
  /** Wraps the handlers before they are served (access control: `auth.ts`). */
  wrapHandlers?: (definition: grpc.ServiceDefinition, handlers: Partial<PublishServiceHandlers>) => Partial<PublishServiceHandlers>;
}

type Unary<Req, Res> = (req: Req, actor: string) => Promise<Res>;

export function createGrpcServer(service: PublishService, options: GrpcServerOptions = {}): grpc.Server {
  const max = options.maxMessageBytes ?? 16 * 1024 * 1024;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': max, 'grpc.max_send_message_length': max, interceptors: options.interceptors ?? [] });
  const fail = grpcFailure(options.onError);

  function unary<Req, Res>(method: string, fn: Unary<Req, Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      fn(call.request, grpcActor(call.metadata)).then(
        (res) => callback(null, res),
        (err: unknown) => callback(fail(method, err)),
      );
    };
  }

  const publishResponse = (r: PublishResult) => ({ version: versionToPb(r.version, r.releases), ...(r.rollout ? { rollout: runToPb(r.rollout) } : {}) });

  const handlers: Partial<PublishServiceHandlers> = {
    CreateTopic: unary('CreateTopic', async (req, actor) => {
      if (req.topic === null) throw QuireError.invalid('topic', 'is required');
      const settings = topicSettingsFromPb(req.topic);
      return topicToPb(await service.createTopic({ ...settings, name: req.topic.name }, actor));
    }),
    GetTopic: unary('GetTopic', async (req) => topicToPb(await service.getTopic(req.name))),
    ListTopics: unary('ListTopics', async (req) => {
      const page = await service.listTopics({ limit: req.limit, cursor: req.cursor, prefix: req.prefix });
      return { topics: page.items.map(topicToPb), nextCursor: page.next ?? '' };
    }),
    UpdateTopic: unary('UpdateTopic', async (req, actor) => {
      if (req.topic === null) throw QuireError.invalid('topic', 'is required');
      const patch = topicSettingsFromPb(req.topic, req.updateMask);
      return topicToPb(await service.updateTopic(req.topic.name, patch, actor, int64(req.expectedRevision, 'expectedRevision')));
    }),
    Publish: unary('Publish', async (req, actor) => {
      const opts = publishOptionsFromPb(req.options);
      return publishResponse(await service.publish({ ...opts, data: req.data, publisher: actor }));
    }),
    PublishStream: (call, callback) => {
      publishStream(service, call, grpcActor(call.metadata)).then(
        (res) => callback(null, publishResponse(res)),
        (err: unknown) => callback(fail('PublishStream', err)),
      );
    },
    PrepareUpload: unary('PrepareUpload', async (req) => {
      const r = await service.prepareUpload({ topic: req.topic, regions: req.regions.length === 0 ? undefined : req.regions, publishId: req.publishId });
      return { publishId: r.publishId, key: r.key, locations: r.locations };
    }),
    CommitUploaded: unary('CommitUploaded', async (req, actor) => {
      const opts = publishOptionsFromPb(req.options);
      const { regions: _regions, ...common } = opts;
      return publishResponse(await service.registerExisting({ ...common, locations: req.locations.map(locationFromPb), publisher: actor }));
    }),
    Release: unary('Release', async (req, actor) => {
      const releases = await service.release(req.topic, int64(req.version, 'version'), req.scopes.map(scopeFromPb), actor, req.reason);
      return { releases: releases.map(releaseToPb) };
    }),
    ListReleases: unary('ListReleases', async (req) => {
      const releases = await service.listReleases(req.topic, int64(req.version, 'version'), { includeWithdrawn: req.includeWithdrawn });
      return { releases: releases.map(releaseToPb) };
    }),
    Pin: unary('Pin', async (req, actor) => {
      const pin = await service.pin({ topic: req.topic, version: int64(req.version, 'version'), scope: optionalScopeFromPb(req.scope), reason: req.reason }, actor);
      return { pin: pinToPb(pin) };
    }),
    Unpin: unary('Unpin', async (req, actor) => {
      const pin = await service.unpin({ topic: req.topic, scope: optionalScopeFromPb(req.scope), reason: req.reason }, actor);
      return { pin: pinToPb(pin) };
    }),
    Rollback: unary('Rollback', async (req, actor) => {
      const res = await service.rollback({ topic: req.topic, scope: optionalScopeFromPb(req.scope), reason: req.reason }, actor);
      return { pin: pinToPb(res.pin) };
    }),
    ListPins: unary('ListPins', async (req) => {
      const pins = await service.listPins(req.topic, { history: req.includeHistory });
      return { pins: pins.map(pinToPb) };
    }),
    DeleteVersion: unary('DeleteVersion', async (req, actor) => {
      await service.deleteVersion(req.topic, int64(req.version, 'version') ?? 0, req.reason, actor);
      return {};
    }),
    RunRetention: unary('RunRetention', async (req, actor) => {
      const res = await service.runRetention(req.topic, undefined, actor);
      return { deleted: res.deleted.map(String), orphaned: res.orphaned.map(String) };
    }),
    ListAudit: unary('ListAudit', async (req) => {
      const page = await service.listAudit({
        topic: req.topic,
        actor: req.actor,
        action: req.action,
        since: int64(req.since, 'since'),
        until: int64(req.until, 'until'),
        limit: req.limit,
        cursor: req.cursor,
      });
      return { entries: page.items.map(auditToPb), nextCursor: page.next ?? '' };
    }),
    ...options.extraHandlers,
  };

  const definition = loadQuireProto().quire.v1.PublishService.service;
  const served = options.wrapHandlers ? options.wrapHandlers(definition, handlers) : handlers;
  const impl: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(definition)) {
    const handler = (served as Record<string, grpc.UntypedHandleCall | undefined>)[name];
    impl[name] = handler ?? unimplemented(name);
  }
  server.addService(definition, impl);
  return server;
}

/** Every method of the contract is unary or client streaming; both answer through the callback. */
function unimplemented(name: string): grpc.UntypedHandleCall {
  return (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
    callback({ code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented yet` });
}

/** Client streaming: the first message carries the options, the next ones data chunks. */
async function publishStream(
  service: PublishService,
  call: grpc.ServerReadableStream<PbPublishChunkOutput, unknown>,
  actor: string,
): Promise<PublishResult> {
  const it = call[Symbol.asyncIterator]() as AsyncIterator<PbPublishChunkOutput>;
  const first = await it.next();
  if (first.done || first.value.part !== 'header') throw QuireError.invalid('header', 'the first message must carry the publish options');
  const opts = publishOptionsFromPb(first.value.header);
  async function* chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      if (r.value.part !== 'data') throw QuireError.invalid('header', 'only the first message may carry the publish options');
      if (r.value.data !== undefined && r.value.data.length > 0) yield r.value.data;
    }
  }
  return service.publish({ ...opts, data: Readable.from(chunks(), { objectMode: false }), publisher: actor });
}
