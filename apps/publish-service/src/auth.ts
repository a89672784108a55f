/**
 * Access control of the publish service: which action each REST route and gRPC method is
 * (the decision itself is `@quire/core`'s `authorize`, applied by `@quire/service-kit`'s
 * guards), and the token API for admins:
 *
 *   POST /v1/tokens {name, role, prefixes?, application?, expiresAt?} → 201 {token, tokenString} (shown once)
 *   GET  /v1/tokens                                      → {tokens} (never the secrets)
 *   POST /v1/tokens/:id/revoke                           → the token, revoked
 *
 * and `quire.v1.AdminService` (CreateToken, ListTokens, RevokeToken) on gRPC.
 */
import type * as grpc from '@grpc/grpc-js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { QuireError, authorize } from '@quire/core';
import type { AccessRequest, Action, ApiTokenView, Clock, MetadataStore, Principal } from '@quire/core';
import { loadQuireProto } from '@quire/proto';
import { int64 } from './mapping.ts';
import type { AdminServiceHandlers, PbApiToken, PublishServiceHandlers } from '@quire/proto';
import {
  AccessGuard,
  apiTokenSchema,
  grpcActor,
  grpcFailure,
  grpcPrincipal,
  guardGrpcHandlers,
  installRestAuth,
  issueToken,
  listTokenViews,
  objectSchema,
  restActor,
  restPrincipal,
  revokeToken,
  topicOrAll,
  wrapSchema,
  type GrpcRules,
  type RestRules,
  OPERATIONS_ROUTES,
} from '@quire/service-kit';

type Req = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, string>; Body: Record<string, unknown> | undefined }>;

const onTopic =
  (action: Action) =>
  (req: FastifyRequest): AccessRequest => ({ action, topic: (req as Req).params.topic ?? '' });

/** Every route of the publish service's REST API, by `METHOD url`. A route missing here is for admins only. */
export const REST_RULES: RestRules = {
  ...OPERATIONS_ROUTES,
  'POST /v1/topics': (req) => ({ action: 'manage', topic: String((req as Req).body?.name ?? '') }),
  // Any token may list; the answer is narrowed to the topics it may read (`installPublishAuth`).
  'GET /v1/topics': () => [],
  'GET /v1/topics/:topic': onTopic('read'),
  'PATCH /v1/topics/:topic': onTopic('manage'),
  'POST /v1/topics/:topic/versions': onTopic('publish'),
  'PUT /v1/topics/:topic/versions': onTopic('publish'),
  'POST /v1/topics/:topic/uploads': onTopic('publish'),
  'POST /v1/topics/:topic/versions::register': onTopic('publish'),
  'GET /v1/topics/:topic/versions': onTopic('read'),
  'GET /v1/topics/:topic/versions/:version': onTopic('read'),
  'GET /v1/topics/:topic/versions/:version/data': onTopic('consume'),
  'POST /v1/topics/:topic/versions/:version/releases': onTopic('operate'),
  'GET /v1/topics/:topic/versions/:version/releases': onTopic('read'),
  'DELETE /v1/topics/:topic/versions/:version': onTopic('manage'),
  'POST /v1/topics/:topic/pins': onTopic('operate'),
  'DELETE /v1/topics/:topic/pins': onTopic('operate'),
  'POST /v1/topics/:topic/pins::unpin': onTopic('operate'),
  'GET /v1/topics/:topic/pins': onTopic('read'),
  'POST /v1/topics/:topic/rollback': onTopic('operate'),
  'POST /v1/topics/:topic/retention::run': onTopic('manage'),
  'POST /v1/topics/:topic/rollouts': onTopic('operate'),
  'POST /v1/topics/:topic/rollouts/:runId/pause': onTopic('operate'),
  'POST /v1/topics/:topic/rollouts/:runId/resume': onTopic('operate'),
  'POST /v1/topics/:topic/rollouts/:runId/advance': onTopic('operate'),
  'POST /v1/topics/:topic/rollouts/:runId/abort': onTopic('operate'),
  'GET /v1/topics/:topic/rollouts': onTopic('read'),
  'GET /v1/topics/:topic/rollouts/:runId': onTopic('read'),
  'GET /v1/scheduler': () => ({ action: 'read' }),
  // The admin UI's read views (admin-routes.ts); the list is narrowed like GET /v1/topics.
  'GET /v1/admin/topics': () => [],
  'GET /v1/admin/topics/:topic': onTopic('read'),
  'GET /v1/admin/topics/:topic/fleet': onTopic('read'),
  'GET /v1/audit': (req) => ({ action: 'read', ...(topicOrAll((req as Req).query.topic) ? { topic: (req as Req).query.topic } : {}) }),
  'POST /v1/tokens': () => ({ action: 'manage' }),
  'GET /v1/tokens': () => ({ action: 'manage' }),
  'POST /v1/tokens/:id/revoke': () => ({ action: 'manage' }),
};

type Msg = Record<string, unknown> & { topic?: unknown; options?: { topic?: unknown } | null; header?: { topic?: unknown } | null };
const field =
  (action: Action, pick: (m: Msg) => unknown) =>
  (m: unknown): AccessRequest => ({ action, topic: String(pick(m as Msg) ?? '') });
const byTopic = (action: Action) => field(action, (m) => m.topic);

/** Every method of `quire.v1.PublishService` and `quire.v1.AdminService`. A method missing here is for admins only. */
export const GRPC_RULES: GrpcRules = {
  CreateTopic: field('manage', (m) => (m.topic as { name?: unknown } | null)?.name),
  GetTopic: field('read', (m) => m.name),
  // Any token may list; the answer is narrowed to the topics it may read (`guardPublishHandlers`).
  ListTopics: () => [],
  UpdateTopic: field('manage', (m) => (m.topic as { name?: unknown } | null)?.name),
  Publish: field('publish', (m) => m.options?.topic),
  PublishStream: field('publish', (m) => m.header?.topic),
  CommitUploaded: field('publish', (m) => m.options?.topic),
  PrepareUpload: byTopic('publish'),
  Release: byTopic('operate'),
  ListReleases: byTopic('read'),
  Pin: byTopic('operate'),
  Unpin: byTopic('operate'),
  Rollback: byTopic('operate'),
  ListPins: byTopic('read'),
  StartRollout: byTopic('operate'),
  ControlRollout: byTopic('operate'),
  GetRollout: byTopic('read'),
  ListRollouts: byTopic('read'),
  DeleteVersion: byTopic('manage'),
  RunRetention: byTopic('manage'),
  ListAudit: (m) => ({ action: 'read', ...(topicOrAll((m as Msg).topic) ? { topic: (m as Msg).topic as string } : {}) }),
  CreateToken: () => ({ action: 'manage' }),
  ListTokens: () => ({ action: 'manage' }),
  RevokeToken: () => ({ action: 'manage' }),
};


/** The publish service's handlers, guarded (for `createGrpcServer`'s `wrapHandlers`). */
export function guardPublishHandlers(guard: AccessGuard): (definition: grpc.ServiceDefinition, handlers: Partial<PublishServiceHandlers>) => Partial<PublishServiceHandlers> {
  return (definition, handlers) => {
    const list = handlers.ListTopics;
    const narrowed: Partial<PublishServiceHandlers> =
      list === undefined
        ? handlers
        : {
            ...handlers,
            ListTopics: (call, callback) => {
              const who = grpcPrincipal(call);
              if (who === undefined) return list(call, callback);
              list(call, (err, res) => {
                if (res) res.topics = (res.topics ?? []).filter((t) => mayRead(who.principal, t.name ?? ''));
                callback(err, res);
              });
            },
          };
    return guardGrpcHandlers(definition, narrowed, guard, GRPC_RULES, 'quire.v1.PublishService');
  };
}

/** Whether a listing shows this topic to the caller: the same decision as reading it. */
function mayRead(principal: Principal, topic: string): boolean {
  return authorize(principal, { action: 'read', topic }).allowed;
}

export interface TokenApiDeps {
  store: MetadataStore;
  guard: AccessGuard;
  clock?: Clock;
  onError?: (err: unknown, method: string) => void;
}

/** Guard the REST API and add the token routes; add `AdminService` to the gRPC server. */
export function installPublishAuth(rest: FastifyInstance, grpcServer: grpc.Server, deps: TokenApiDeps): void {
  installRestAuth(rest, deps.guard, REST_RULES);
  if (deps.guard.enabled) {
    rest.addHook('preSerialization', async (req, _reply, payload) => {
      const who = restPrincipal(req);
      if (who === undefined || req.method !== 'GET' || (req.routeOptions.url !== '/v1/topics' && req.routeOptions.url !== '/v1/admin/topics')) return payload;
      const p = payload as { topics?: Array<{ name: string }> };
      return Array.isArray(p.topics) ? { ...p, topics: p.topics.filter((t) => mayRead(who.principal, t.name)) } : payload;
    });
  }
  registerTokenRoutes(rest, deps);
  const definition = loadQuireProto().quire.v1.AdminService.service;
  grpcServer.addService(definition, guardGrpcHandlers(definition, adminHandlers(deps), deps.guard, GRPC_RULES, 'quire.v1.AdminService'));
}

const str = { type: 'string' } as const;

export function registerTokenRoutes(app: FastifyInstance, deps: TokenApiDeps): void {
  app.post<{ Body: { name: string; role: string; prefixes?: string[]; application?: string; expiresAt?: number } }>(
    '/v1/tokens',
    {
      schema: {
        summary: 'Create an API token (admins); its string is shown only in this answer',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'role'],
          properties: {
            name: str,
            role: str,
            prefixes: { type: 'array', items: str },
            application: str,
            expiresAt: { type: 'integer', description: 'When the token stops working, ms since the epoch (in the future); absent or 0 = never' },
          },
        },
        response: {
          201: objectSchema(
            { token: apiTokenSchema, tokenString: { type: 'string', description: 'The bearer token (quire_<id>_<secret>); never shown again' } },
            ['token', 'tokenString'],
          ),
        },
      },
    },
    async (req, reply) => {
      const { token, secret } = await issueToken(deps.store, req.body, restActor(req), deps.clock);
      return reply.status(201).send({ token, tokenString: secret });
    },
  );
  app.get(
    '/v1/tokens',
    { schema: { summary: 'Every API token, revoked ones included (never their secrets)', response: { 200: wrapSchema('tokens', { type: 'array', items: apiTokenSchema }) } } },
    async () => ({ tokens: await listTokenViews(deps.store) }),
  );
  app.post<{ Params: { id: string } }>(
    '/v1/tokens/:id/revoke',
    {
      schema: {
        summary: 'Revoke a token (the first revocation stands); answers the token',
        params: { type: 'object', required: ['id'], properties: { id: str } },
        response: { 200: apiTokenSchema },
      },
    },
    async (req) => {
      const t = await revokeToken(deps.store, req.params.id, restActor(req), deps.clock);
      deps.guard.forget(t.id);
      return t;
    },
  );
}

export function tokenToPb(t: ApiTokenView): PbApiToken {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    prefixes: t.prefixes,
    application: t.application ?? '',
    createdAt: String(t.createdAt),
    createdBy: t.createdBy,
    expiresAt: String(t.expiresAt ?? 0),
    revokedAt: String(t.revokedAt ?? 0),
    revokedBy: t.revokedBy ?? '',
  };
}

function adminHandlers(deps: TokenApiDeps): AdminServiceHandlers {
  const fail = grpcFailure(deps.onError);
  return {
    CreateToken: (call, callback) => {
      const r = call.request;
      Promise.resolve()
        .then(() => {
          // int64 as a decimal string; 0 = never.
          const expiresAt = int64(r.expiresAt, 'expiresAt');
          return issueToken(
            deps.store,
            {
              name: r.name,
              role: r.role,
              prefixes: r.prefixes,
              ...(r.application === '' ? {} : { application: r.application }),
              ...(expiresAt === undefined ? {} : { expiresAt }),
            },
            grpcActor(call.metadata),
            deps.clock,
          );
        })
        .then(
          ({ token, secret }) => callback(null, { token: tokenToPb(token), tokenString: secret }),
          (err: unknown) => callback(fail('CreateToken', err)),
        );
    },
    ListTokens: (_call, callback) => {
      listTokenViews(deps.store).then(
        (tokens) => callback(null, { tokens: tokens.map(tokenToPb) }),
        (err: unknown) => callback(fail('ListTokens', err)),
      );
    },
    RevokeToken: (call, callback) => {
      revokeToken(deps.store, call.request.id, grpcActor(call.metadata), deps.clock).then(
        (t) => {
          deps.guard.forget(t.id);
          callback(null, tokenToPb(t));
        },
        (err: unknown) => callback(fail('RevokeToken', err instanceof QuireError ? err : QuireError.from(err))),
      );
    },
  };
}

/**
 * First start with access control on: create an admin token when the store has no active
 * one, and return its string (the caller shows it once). Later starts: undefined.
 */
export async function bootstrapAdminToken(store: MetadataStore, name = 'bootstrap-admin', by = 'bootstrap'): Promise<string | undefined> {
  const active = (await store.listTokens()).filter((t) => t.role === 'admin' && t.revokedAt === undefined);
  if (active.length > 0) return undefined;
  return (await issueToken(store, { name, role: 'admin' }, by)).secret;
}
