/**
 * REST transport (fastify): JSON mirroring the gRPC messages, camelCase. Handlers parse,
 * call `ConsumeService`, map the result; errors go through `httpErrorOf`. Inline bytes
 * travel base64 in JSON (`inlineData`), raw on the `/data` route.
 *
 *   POST /v1/poll                                     PollRequest → PollResponse (long-poll with waitMs)
 *   GET  /v1/topics/:topic/versions?limit&cursor&order=asc|desc
 *   GET  /v1/topics/:topic/versions/:version?region=  (S3 locations in that region first)
 *   GET  /v1/topics/:topic/at/:time?region&application&cluster&instance&<attribute>=<value>
 *   GET  /v1/topics/:topic/versions/:version/data     inline bytes
 *   GET  /healthz                                     { ok, stale, cacheAgeMs, topics, heldPolls }
 */
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { QuireError } from '@quire/core';
import { REQUEST_ID_HEADER, REQUEST_ID_OPTIONS, installApiDocs } from '@quire/observability';
import { bytesResponse, installErrorHandlers, objectSchema, pageSchema, versionViewSchema } from '@quire/service-kit';
import { pollHasDenied } from './auth.ts';
import type { TopicCache } from './cache.ts';
import { PollCancel, isSharedAnswer, type ConsumeService, type PollResult, type VersionView } from './service.ts';

export interface RestOptions {
  /** Fastify's logger options (a `stream` for tests that read the log lines). */
  logger?: boolean | { level: string; stream?: { write(line: string): void } };
  bodyLimit?: number;
}

const str = { type: 'string' } as const;
const uint = { type: 'integer', minimum: 0 } as const;
const pollBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    identity: {
      type: 'object',
      additionalProperties: false,
      properties: { region: str, application: str, cluster: str, instance: str, attributes: { type: 'object', additionalProperties: str } },
    },
    subscriptions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['topic'],
        properties: { topic: str, knownVersion: uint, appliedVersion: uint, failedVersion: uint, error: str },
      },
    },
    waitMs: { type: 'integer' },
  },
} as const;
// Response schemas (answers are validated against them before they are serialized).
const nullableInt = { type: ['integer', 'null'] } as const;
const healthSchema = objectSchema(
  { ok: { type: 'boolean' }, stale: { type: 'boolean' }, cacheAgeMs: nullableInt, lastRefreshOkAt: nullableInt, topics: { type: 'integer' }, heldPolls: { type: 'integer' } },
  ['ok', 'stale', 'cacheAgeMs', 'lastRefreshOkAt', 'topics', 'heldPolls'],
);
const pollResponse = objectSchema(
  {
    updates: {
      type: 'array',
      items: objectSchema(
        {
          topic: str,
          version: versionViewSchema,
          via: { type: 'string', enum: ['release', 'pin'] },
          inlineData: { type: 'string', description: 'The bytes of an inline version, base64' },
        },
        ['topic', 'version', 'via'],
      ),
    },
    errors: { type: 'array', items: objectSchema({ topic: str, code: str, message: str }, ['topic', 'code', 'message']) },
    nextPollMs: { type: 'integer' },
    stale: { type: 'boolean' },
  },
  ['updates', 'errors', 'nextPollMs', 'stale'],
);
/** `GET /at/:time` also says whether a release or a pin made the version apply. */
const versionAtSchema = objectSchema(
  { ...versionViewSchema.properties, via: { type: 'string', enum: ['release', 'pin'] } },
  [...versionViewSchema.required, 'via'],
);
const topicParams = { type: 'object', required: ['topic'], properties: { topic: str } } as const;
const versionParams = { type: 'object', required: ['topic', 'version'], properties: { topic: str, version: { type: 'string', pattern: '^[0-9]+$' } } } as const;

/** JSON form of a version: the domain record (pointer `{ kind, ... }`) plus its scopes. */
function versionJson(v: VersionView): Record<string, unknown> {
  return { ...v };
}

function pollJson(r: PollResult): Record<string, unknown> {
  return {
    updates: r.updates.map((u) => ({
      topic: u.topic,
      version: versionJson(u.version),
      via: u.via,
      ...(u.inlineData === undefined ? {} : { inlineData: Buffer.from(u.inlineData.buffer, u.inlineData.byteOffset, u.inlineData.byteLength).toString('base64') }),
    })),
    errors: r.errors,
    nextPollMs: r.nextPollMs,
    stale: r.stale,
  };
}

/** `1732500000000` or an ISO-8601 time → ms since the epoch. */
function parseTime(s: string): number {
  const n = /^[0-9]+$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isSafeInteger(n) || n <= 0) throw QuireError.invalid('at', 'must be milliseconds since the epoch or an ISO-8601 time');
  return n;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The held poll's cancellation, on its response (read by `cancelOnClose`, one function for every poll). */
const CANCEL = Symbol('quire.pollCancel');
type WithCancel = ServerResponse & { [CANCEL]?: PollCancel };

/**
 * A held poll's response closed: the client went away before the answer (a 'close' after
 * the answer is written does nothing). One listener function for every held poll, no
 * closure per poll: the cancellation hangs on the response.
 */
function cancelOnClose(this: WithCancel): void {
  if (!this.writableEnded) this[CANCEL]?.abort();
}

const NAMED = new Set(['region', 'application', 'cluster', 'instance']);

/** Identity from a query string: the named fields and any other key as a free attribute. */
function identityFromQuery(q: Record<string, unknown>): Record<string, unknown> {
  const attributes: Record<string, unknown> = {};
  const out: Record<string, unknown> = { attributes };
  for (const [k, v] of Object.entries(q)) {
    if (Array.isArray(v)) throw QuireError.invalid(`query.${k}`, 'is given more than once');
    if (NAMED.has(k)) out[k] = v;
    else attributes[k] = v;
  }
  return out;
}

export async function createRestServer(service: ConsumeService, cache: TopicCache, options: RestOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...REQUEST_ID_OPTIONS,
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  app.removeContentTypeParser('text/plain');
  installErrorHandlers(app);
  await installApiDocs(app, { title: 'Quire consume service', description: 'Batched (long-)polls, version history, data' });

  // Poll answers shared by many polls (service.ts `isSharedAnswer`: nothing new, or one
  // shared update after a publish) are validated and serialized once, by the first poll
  // answered with one; their JSON is kept by object, as UTF-8 bytes (no string to encode
  // per answer: 10,000 held polls woken by one publish write the same buffer), and sent as
  // is to every other poll that gets the same answer (those arriving meanwhile wait for it).
  const sharedJson = new WeakMap<PollResult, Buffer | Promise<Buffer | undefined>>();
  const serializing = new WeakMap<FastifyRequest, { result: PollResult; done: (json: Buffer | undefined) => void }>();

  // While draining, answers close their connection: a keep-alive socket would otherwise
  // hold the server's graceful close until its idle timeout.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (service.closing) void reply.header('connection', 'close');
    const first = serializing.get(req);
    if (first !== undefined) first.done(typeof payload === 'string' && reply.statusCode === 200 ? Buffer.from(payload) : undefined);
    done(null, payload);
  });

  app.get('/healthz', { schema: { summary: 'Liveness, with the cache state', response: { 200: healthSchema } } }, async () => {
    const h = cache.health();
    return { ok: true, stale: h.stale, cacheAgeMs: h.ageMs ?? null, lastRefreshOkAt: h.lastRefreshOkAt ?? null, topics: h.topics, heldPolls: service.heldPolls };
  });

  /**
   * Send a shared answer's kept JSON straight on the response, as fastify's send would after
   * the onSend hooks (the same status and headers, in the same order: content-type, the
   * request id of `installApiDocs`'s hook, `connection: close` while draining as the hook
   * above, content-length), without its per-reply path (hook runners, header checks,
   * payload type checks): 10,000 held polls woken by one publish each pay only the socket
   * write. The reply is hijacked, but fastify still runs the onResponse hooks and its
   * "request completed" log line on the response's 'finish' (`setupResponseListeners`),
   * so the request metrics and the log are the same. A route-level or new onSend hook
   * would be skipped here: add its header to this function too.
   */
  const sendKept = (req: FastifyRequest, reply: FastifyReply, json: Buffer): void => {
    void reply.hijack();
    const headers: Record<string, string> = { 'content-type': JSON_TYPE, [REQUEST_ID_HEADER]: req.id };
    if (service.closing) headers['connection'] = 'close';
    headers['content-length'] = String(json.byteLength);
    reply.raw.writeHead(200, headers);
    reply.raw.end(json);
  };

  /**
   * A poll's answer (`ConsumeService.pollInto`'s callback, one function for every poll: a
   * held poll keeps no promise or suspended handler). Shared answers go out as kept JSON
   * once the first poll given one has serialized it.
   */
  const answerPoll = (reply: FastifyReply, result: PollResult | undefined, err?: unknown): void => {
    if (result === undefined) {
      void reply.send(err);
      return;
    }
    const req = reply.request;
    if (isSharedAnswer(result) && !pollHasDenied(req)) {
      const known = sharedJson.get(result);
      if (known instanceof Promise) {
        // Being serialized by another poll: its JSON, or this poll's own serialization if that failed.
        void known
          .then((json) => (json === undefined ? void reply.send(pollJson(result)) : sendKept(req, reply, json)))
          .catch((e: unknown) => {
            if (!reply.sent) void reply.send(e);
          });
        return;
      }
      if (known !== undefined) {
        sendKept(req, reply, known);
        return;
      }
      // The first: fastify validates and serializes it; onSend keeps the JSON.
      let settle: (json: Buffer | undefined) => void = () => {};
      sharedJson.set(result, new Promise<Buffer | undefined>((resolve) => (settle = resolve)));
      // Never leave the others waiting (an answer that never reaches onSend).
      const fallback = setTimeout(() => done(undefined), 2000);
      const done = (value: Buffer | undefined): void => {
        clearTimeout(fallback);
        if (value === undefined) sharedJson.delete(result);
        else sharedJson.set(result, value);
        settle(value);
      };
      serializing.set(req, { result, done });
    }
    void reply.send(pollJson(result));
  };

  app.post<{ Body: Record<string, unknown> }>('/v1/poll', { schema: { body: pollBody, response: { 200: pollResponse } } }, (req, reply) => {
    const waitMs = req.body.waitMs;
    let cancel: PollCancel | undefined;
    if (typeof waitMs === 'number' && waitMs > 0) {
      // Cancel a held poll when the client goes away before the answer (`cancelOnClose`;
      // the listener goes with the response).
      cancel = new PollCancel();
      const raw = reply.raw as WithCancel;
      raw[CANCEL] = cancel;
      raw.on('close', cancelOnClose);
    }
    service.pollInto(req.body, cancel, answerPoll, reply);
    // A held poll keeps its parsed form (service.ts); the request's JSON body objects need
    // not wait with it (nothing reads them after the handler).
    if (cancel !== undefined && !reply.sent) (req as { body: unknown }).body = undefined;
  });

  app.get<{ Params: { topic: string }; Querystring: { limit?: string; cursor?: string; order?: string } }>(
    '/v1/topics/:topic/versions',
    {
      schema: {
        params: topicParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'string', pattern: '^[0-9]+$' }, cursor: str, order: { type: 'string', enum: ['asc', 'desc'] } },
        },
        response: { 200: pageSchema('versions', versionViewSchema, 'nextCursor') },
      },
    },
    async (req) => {
      const page = await service.listVersions(req.params.topic, {
        ...(req.query.limit === undefined ? {} : { limit: Number(req.query.limit) }),
        ...(req.query.cursor === undefined ? {} : { cursor: req.query.cursor }),
        ascending: req.query.order === 'asc',
      });
      return { versions: page.items.map(versionJson), ...(page.next === undefined ? {} : { nextCursor: page.next }) };
    },
  );

  app.get<{ Params: { topic: string; version: string }; Querystring: Record<string, unknown> }>(
    '/v1/topics/:topic/versions/:version',
    { schema: { params: versionParams, response: { 200: versionViewSchema } } },
    async (req) => versionJson(await service.getVersion(req.params.topic, Number(req.params.version), identityFromQuery(req.query))),
  );

  app.get<{ Params: { topic: string; version: string } }>(
    '/v1/topics/:topic/versions/:version/data',
    { schema: { params: versionParams, response: { 200: bytesResponse } } },
    async (req, reply) => {
      // Any version, inline or blob, streamed; `region` (query) is read first.
      const region = (req.query as Record<string, unknown>).region;
      const { record, body } = await service.openData(req.params.topic, Number(req.params.version), typeof region === 'string' ? region : undefined);
      return reply
        .header('content-type', record.contentType || 'application/octet-stream')
        .header('content-length', record.size)
        .header('x-quire-sha256', record.sha256)
        .send(body);
    },
  );

  app.get<{ Params: { topic: string; time: string }; Querystring: Record<string, unknown> }>(
    '/v1/topics/:topic/at/:time',
    { schema: { params: { type: 'object', required: ['topic', 'time'], properties: { topic: str, time: str } }, response: { 200: versionAtSchema } } },
    async (req) => {
      const v = await service.versionAt(req.params.topic, parseTime(req.params.time), identityFromQuery(req.query));
      return versionJson(v);
    },
  );

  return app;
}
