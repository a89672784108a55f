/**
 * REST transport (fastify). Handlers parse, call `PublishService`, and return its
 * result; every error goes through `httpErrorOf`. Route schemas reject unknown and
 * wrong-typed fields (no coercion, no silent removal) and will feed the OpenAPI document.
 */
import type { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { QuireError } from '@quire/core';
import { REQUEST_ID_OPTIONS, installApiDocs } from '@quire/observability';
import {
  auditEntrySchema,
  blobLocationSchema,
  bytesResponse,
  installErrorHandlers,
  objectSchema,
  pageSchema,
  pinSchema,
  publishResultSchema,
  releaseSchema,
  restActor,
  topicSchema,
  versionSchema,
  wrapSchema,
} from '@quire/service-kit';
import type { PublishService } from './service.ts';

export interface RestOptions {
  /** Largest JSON body (inline publishes carry their data in it). Default 8 MiB. */
  bodyLimit?: number;
  logger?: boolean | { level: string };
}

const META_HEADER_PREFIX = 'x-quire-meta-';

const str = { type: 'string' } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const scopeList = { type: 'array', items: stringMap } as const;
const intLike = { type: 'string', pattern: '^[0-9]+$' } as const;
const bool = { type: 'string', enum: ['true', 'false'] } as const;
const reasonBody = { type: ['object', 'null'], additionalProperties: false, properties: { reason: str } } as const;
const scopeReasonBody = { type: ['object', 'null'], additionalProperties: false, properties: { scope: stringMap, reason: str } } as const;
const topicParams = { type: 'object', required: ['topic'], properties: { topic: str } } as const;
const versionParams = { type: 'object', required: ['topic', 'version'], properties: { topic: str, version: intLike } } as const;
const retention = {
  type: 'object',
  additionalProperties: false,
  properties: { keepLast: { type: 'integer' }, maxAgeMs: { type: 'integer' } },
} as const;
const topicSettings = {
  owner: str,
  description: str,
  retention: { anyOf: [retention, { type: 'null' }] },
  inlineThresholdBytes: { type: 'integer' },
  rolloutPlan: { type: ['object', 'null'] },
  jsonSchema: { type: ['object', 'string', 'null'] },
  allowedApplications: { type: ['array', 'null'], items: str },
  // {"algorithm": "aes-256-gcm", "keyId": "…"}, or "off" / null (validated by the service).
  encryption: { type: ['object', 'string', 'null'] },
} as const;
// Response schemas (see @quire/service-kit's schemas.ts: answers are validated against them).
const published = { 200: publishResultSchema, 201: publishResultSchema } as const;
const releasesBody = wrapSchema('releases', { type: 'array', items: releaseSchema });
const pinBody = wrapSchema('pin', pinSchema);

const publishFields = {
  metadata: stringMap,
  contentType: str,
  scopes: scopeList,
  useRolloutPlan: { type: 'boolean' },
  regions: { type: 'array', items: str },
  publishId: str,
  sha256: str,
  size: { type: 'integer' },
} as const;

export async function createRestServer(service: PublishService, options: RestOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...REQUEST_ID_OPTIONS,
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 8 * 1024 * 1024,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true } },
  });

  // JSON only on the JSON routes: a text/plain body is refused (415), not parsed as a string.
  app.removeContentTypeParser('text/plain');

  installErrorHandlers(app);
  await installApiDocs(app, { title: 'Quire publish service', description: 'Topics, publish, releases, pins, rollback, rollouts, audit' });

  app.get('/healthz', { schema: { summary: 'Liveness: the process answers', response: { 200: objectSchema({ ok: { type: 'boolean' } }, ['ok']) } } }, async () => ({ ok: true }));

  // ---- topics ---------------------------------------------------------------
  app.post<{ Body: Record<string, unknown> }>(
    '/v1/topics',
    {
      schema: {
        body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: str, ...topicSettings } },
        response: { 201: topicSchema },
      },
    },
    async (req, reply) => {
      const topic = await service.createTopic(req.body as { name: unknown }, restActor(req));
      return reply.status(201).send(topic);
    },
  );

  app.get<{ Querystring: { limit?: string; cursor?: string; prefix?: string } }>(
    '/v1/topics',
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { limit: intLike, cursor: str, prefix: str } },
        response: { 200: pageSchema('topics', topicSchema) },
      },
    },
    async (req) => {
      const page = await service.listTopics({ limit: num(req.query.limit), cursor: req.query.cursor, prefix: req.query.prefix });
      return { topics: page.items, next: page.next };
    },
  );

  app.get<{ Params: { topic: string } }>('/v1/topics/:topic', { schema: { params: topicParams, response: { 200: topicSchema } } }, async (req) =>
    service.getTopic(req.params.topic),
  );

  app.patch<{ Params: { topic: string }; Body: Record<string, unknown> }>(
    '/v1/topics/:topic',
    {
      schema: {
        params: topicParams,
        body: { type: 'object', additionalProperties: false, properties: { ...topicSettings, expectedRevision: { type: 'integer' } } },
        response: { 200: topicSchema },
      },
    },
    async (req) => {
      const { expectedRevision, ...patch } = req.body;
      return service.updateTopic(req.params.topic, patch, restActor(req), expectedRevision);
    },
  );

  // ---- versions ---------------------------------------------------------------
  app.post<{ Params: { topic: string }; Body: Record<string, unknown> }>(
    '/v1/topics/:topic/versions',
    {
      schema: {
        params: topicParams,
        body: { type: 'object', additionalProperties: false, properties: { data: str, dataBase64: str, ...publishFields } },
        response: published,
      },
    },
    async (req, reply) => {
      const { data, dataBase64, ...rest } = req.body;
      const res = await service.publish({ ...rest, topic: req.params.topic, data: decodeData(data, dataBase64), publisher: restActor(req) });
      return reply.status(res.replayed ? 200 : 201).send(res);
    },
  );

  // Direct upload, step 1: where to put the bytes (step 2 is `versions:register` with them).
  app.post<{ Params: { topic: string }; Body: { regions?: string[]; publishId?: string } }>(
    '/v1/topics/:topic/uploads',
    {
      schema: {
        params: topicParams,
        body: { type: 'object', additionalProperties: false, properties: { regions: { type: 'array', items: str }, publishId: str } },
        response: {
          201: objectSchema({ publishId: str, key: str, locations: { type: 'array', items: blobLocationSchema } }, ['publishId', 'key', 'locations']),
        },
      },
    },
    async (req, reply) => reply.status(201).send(await service.prepareUpload({ topic: req.params.topic, regions: req.body?.regions, publishId: req.body?.publishId })),
  );

  app.post<{ Params: { topic: string }; Body: Record<string, unknown> }>(
    '/v1/topics/:topic/versions::register',
    {
      schema: {
        params: topicParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...publishFields,
            key: str,
            locations: {
              type: 'array',
              items: { type: 'object', additionalProperties: false, required: ['region', 'key'], properties: { region: str, bucket: str, key: str } },
            },
          },
        },
        response: published,
      },
    },
    async (req, reply) => {
      const res = await service.registerExisting({ ...req.body, topic: req.params.topic, publisher: restActor(req) });
      return reply.status(res.replayed ? 200 : 201).send(res);
    },
  );

  // Streaming upload: the raw body of any content type goes to the service as a stream.
  await app.register(async (upload) => {
    upload.removeAllContentTypeParsers();
    upload.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    upload.put<{ Params: { topic: string }; Querystring: Record<string, string> }>(
      '/v1/topics/:topic/versions',
      {
        schema: {
          params: topicParams,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { metadata: str, scopes: str, regions: str, publishId: str, sha256: str },
          },
          response: published,
        },
      },
      async (req, reply) => {
        const q = req.query;
        const body = req.body as Readable | undefined;
        const length = req.headers['content-length'];
        const res = await service.publish({
          topic: req.params.topic,
          data: body ?? new Uint8Array(0),
          contentType: req.headers['content-type'],
          metadata: { ...jsonParam(q.metadata, 'metadata'), ...metaHeaders(req) },
          scopes: scopesOf(q.scopes, req.headers['x-quire-scope']),
          regions: listParam(q.regions ?? header(req, 'x-quire-region')),
          publishId: q.publishId ?? header(req, 'x-quire-publish-id'),
          sha256: q.sha256 ?? header(req, 'x-quire-sha256'),
          size: length === undefined ? undefined : Number(length),
          publisher: restActor(req),
        });
        return reply.status(res.replayed ? 200 : 201).send(res);
      },
    );
  });

  app.get<{ Params: { topic: string }; Querystring: { limit?: string; cursor?: string; order?: string } }>(
    '/v1/topics/:topic/versions',
    {
      schema: {
        params: topicParams,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: intLike, cursor: str, order: { enum: ['asc', 'desc'] } } },
        response: { 200: pageSchema('versions', versionSchema) },
      },
    },
    async (req) => {
      const page = await service.listVersions(req.params.topic, { limit: num(req.query.limit), cursor: req.query.cursor, order: req.query.order });
      return { versions: page.items, next: page.next };
    },
  );

  app.get<{ Params: { topic: string; version: string } }>(
    '/v1/topics/:topic/versions/:version',
    {
      schema: {
        params: versionParams,
        response: { 200: objectSchema({ version: versionSchema, releases: { type: 'array', items: releaseSchema } }, ['version', 'releases']) },
      },
    },
    async (req) => service.getVersion(req.params.topic, Number(req.params.version)),
  );

  app.get<{ Params: { topic: string; version: string } }>(
    '/v1/topics/:topic/versions/:version/data',
    { schema: { params: versionParams, response: { 200: bytesResponse } } },
    async (req, reply) => {
      const { record, body } = await service.openData(req.params.topic, Number(req.params.version));
      void reply
        .header('content-type', record.contentType)
        .header('content-length', String(record.size))
        .header('etag', `"${record.sha256}"`)
        .header('x-quire-version', String(record.version))
        .header('x-quire-sha256', record.sha256);
      return reply.send(body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : body);
    },
  );

  app.post<{ Params: { topic: string; version: string }; Body: { scopes?: unknown; reason?: string } }>(
    '/v1/topics/:topic/versions/:version/releases',
    {
      schema: {
        params: versionParams,
        body: { type: 'object', additionalProperties: false, properties: { scopes: scopeList, reason: str } },
        response: { 201: releasesBody },
      },
    },
    async (req, reply) => {
      const releases = await service.release(req.params.topic, Number(req.params.version), req.body.scopes, restActor(req), req.body.reason);
      return reply.status(201).send({ releases });
    },
  );

  app.get<{ Params: { topic: string; version: string }; Querystring: { includeWithdrawn?: string } }>(
    '/v1/topics/:topic/versions/:version/releases',
    {
      schema: {
        params: versionParams,
        querystring: { type: 'object', additionalProperties: false, properties: { includeWithdrawn: bool } },
        response: { 200: releasesBody },
      },
    },
    async (req) => ({
      releases: await service.listReleases(req.params.topic, Number(req.params.version), { includeWithdrawn: req.query.includeWithdrawn }),
    }),
  );

  app.delete<{ Params: { topic: string; version: string }; Body: { reason?: string } | undefined }>(
    '/v1/topics/:topic/versions/:version',
    { schema: { params: versionParams, body: reasonBody, response: { 200: wrapSchema('version', versionSchema) } } },
    async (req) => ({ version: await service.deleteVersion(req.params.topic, Number(req.params.version), req.body?.reason, restActor(req)) }),
  );

  // ---- pins, rollback, retention ------------------------------------------------
  app.post<{ Params: { topic: string }; Body: { version?: number; scope?: unknown; reason?: string } }>(
    '/v1/topics/:topic/pins',
    {
      schema: {
        params: topicParams,
        body: { type: 'object', additionalProperties: false, required: ['version'], properties: { version: { type: 'integer' }, scope: stringMap, reason: str } },
        response: { 201: pinBody },
      },
    },
    async (req, reply) => {
      const pin = await service.pin({ topic: req.params.topic, version: req.body.version, scope: req.body.scope, reason: req.body.reason }, restActor(req));
      return reply.status(201).send({ pin });
    },
  );

  const unpin = async (req: FastifyRequest<{ Params: { topic: string }; Body: { scope?: unknown; reason?: string } | undefined }>) => ({
    pin: await service.unpin({ topic: req.params.topic, scope: req.body?.scope, reason: req.body?.reason }, restActor(req)),
  });
  app.delete('/v1/topics/:topic/pins', { schema: { params: topicParams, body: scopeReasonBody, response: { 200: pinBody } } }, unpin);
  app.post('/v1/topics/:topic/pins::unpin', { schema: { params: topicParams, body: scopeReasonBody, response: { 200: pinBody } } }, unpin);

  app.get<{ Params: { topic: string }; Querystring: { history?: string } }>(
    '/v1/topics/:topic/pins',
    {
      schema: {
        params: topicParams,
        querystring: { type: 'object', additionalProperties: false, properties: { history: bool } },
        response: { 200: wrapSchema('pins', { type: 'array', items: pinSchema }) },
      },
    },
    async (req) => ({ pins: await service.listPins(req.params.topic, { history: req.query.history }) }),
  );

  app.post<{ Params: { topic: string }; Body: { scope?: unknown; reason?: string } | undefined }>(
    '/v1/topics/:topic/rollback',
    {
      schema: {
        params: topicParams,
        body: scopeReasonBody,
        response: { 201: objectSchema({ pin: pinSchema, from: { type: 'integer', description: 'The version applied in the scope before' } }, ['pin', 'from']) },
      },
    },
    async (req, reply) => {
      const res = await service.rollback({ topic: req.params.topic, scope: req.body?.scope, reason: req.body?.reason }, restActor(req));
      return reply.status(201).send(res);
    },
  );

  const versionList = { type: 'array', items: { type: 'integer' } } as const;
  const retentionRun = { 200: objectSchema({ deleted: versionList, orphaned: versionList }, ['deleted', 'orphaned']) };
  app.post<{ Params: { topic: string } }>('/v1/topics/:topic/retention::run', { schema: { params: topicParams, response: retentionRun } }, async (req) => {
    const res = await service.runRetention(req.params.topic, undefined, restActor(req));
    return { deleted: res.deleted, orphaned: res.orphaned };
  });

  // ---- audit ------------------------------------------------------------------
  app.get<{ Querystring: { topic?: string; actor?: string; action?: string; since?: string; until?: string; limit?: string; cursor?: string } }>(
    '/v1/audit',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { topic: str, actor: str, action: str, since: intLike, until: intLike, limit: intLike, cursor: str },
        },
        response: { 200: pageSchema('entries', auditEntrySchema) },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await service.listAudit({
        topic: q.topic,
        actor: q.actor,
        action: q.action,
        since: num(q.since),
        until: num(q.until),
        limit: num(q.limit),
        cursor: q.cursor,
      });
      return { entries: page.items, next: page.next };
    },
  );

  return app;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function num(v: string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

function decodeData(data: unknown, dataBase64: unknown): Uint8Array {
  if (data !== undefined && dataBase64 !== undefined) throw QuireError.invalid('data', 'give either data or dataBase64, not both');
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (typeof dataBase64 === 'string') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(dataBase64) || dataBase64.length % 4 !== 0) {
      throw QuireError.invalid('dataBase64', 'is not valid base64');
    }
    return Buffer.from(dataBase64, 'base64');
  }
  throw QuireError.invalid('data', 'is required (or dataBase64)');
}

function jsonParam(value: string | undefined, field: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw QuireError.invalid(field, 'must be JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw QuireError.invalid(field, 'must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** `x-quire-meta-<key>: value` headers (keys arrive lowercased). */
function metaHeaders(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith(META_HEADER_PREFIX) && typeof v === 'string') out[k.slice(META_HEADER_PREFIX.length)] = v;
  }
  return out;
}

/** Scopes from `?scopes=[...]` or `x-quire-scope` headers (each a JSON object or array). */
function scopesOf(query: string | undefined, headers: string | string[] | undefined): unknown[] | undefined {
  const raw = query !== undefined ? [{ v: query, field: 'scopes' }] : (Array.isArray(headers) ? headers : headers === undefined ? [] : [headers]).map((v) => ({ v, field: 'x-quire-scope' }));
  if (raw.length === 0) return undefined;
  const out: unknown[] = [];
  for (const { v, field } of raw) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw QuireError.invalid(field, 'must be JSON (a scope object or a list of them)');
    }
    if (Array.isArray(parsed)) out.push(...(parsed as unknown[]));
    else out.push(parsed);
  }
  return out;
}

function listParam(value: string | undefined): string[] | undefined {
  if (value === undefined || value === '') return undefined;
  return value.split(',').map((s) => s.trim());
}
