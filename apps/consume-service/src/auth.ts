/**
 * Access control of the consume service: which action each REST route and gRPC method is
 * (the decision is `@quire/core`'s `authorize`, applied by `@quire/service-kit`'s guards).
 *
 * A poll is a batch: each subscription is decided on its own (`consume` on its topic, as
 * the poll's application). Refused topics are answered like unknown ones, in the poll's
 * `errors` (PERMISSION_DENIED, with the reason) while the others are served; a poll whose
 * every topic is refused fails with PERMISSION_DENIED. A token bound to an application
 * polls as that application (an identity without one gets it; another one is refused).
 * The topic's own `allowedApplications` is checked by the service with the same core
 * function (`applicationMayConsume`).
 */
import type * as grpc from '@grpc/grpc-js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Code, QuireError } from '@quire/core';
import type { AccessRequest, Action, Principal } from '@quire/core';
import type { ConsumeServiceHandlers } from '@quire/proto';
import {
  AccessGuard,
  grpcFailure,
  grpcPrincipal,
  guardGrpcHandlers,
  installRestAuth,
  restPrincipal,
  type CallInfo,
  type GrpcRules,
  type RestRules,
  OPERATIONS_ROUTES,
} from '@quire/service-kit';

const onTopic =
  (action: Action) =>
  (req: FastifyRequest): AccessRequest => ({ action, topic: (req.params as Record<string, string>).topic ?? '' });

/** Every route of the consume service's REST API, by `METHOD url`. A route missing here is for admins only. */
export const REST_RULES: RestRules = {
  ...OPERATIONS_ROUTES,
  // Authenticated here; each subscription is decided by the poll filter below.
  'POST /v1/poll': () => [],
  'GET /v1/topics/:topic/versions': onTopic('read'),
  'GET /v1/topics/:topic/versions/:version': onTopic('read'),
  'GET /v1/topics/:topic/versions/:version/data': onTopic('consume'),
  'GET /v1/topics/:topic/at/:time': onTopic('read'),
};

const byTopic =
  (action: Action) =>
  (m: unknown): AccessRequest => ({ action, topic: String((m as { topic?: unknown }).topic ?? '') });

/** Every method of `quire.v1.ConsumeService`. */
export const GRPC_RULES: GrpcRules = {
  Poll: () => [],
  PollStream: () => [],
  GetVersion: byTopic('read'),
  ListVersions: byTopic('read'),
  VersionAt: byTopic('read'),
  ReadInline: byTopic('consume'),
  ReadData: byTopic('consume'),
};


interface Denied {
  topic: string;
  message: string;
}

/**
 * Decide each subscription of a poll: the allowed ones (in order) and the refused ones.
 * Sets the identity's application to the token's when it has none. All refused: PERMISSION_DENIED.
 */
async function filterPoll(
  guard: AccessGuard,
  who: { principal: Principal; tokenId: string },
  identity: { application?: string } | null | undefined,
  subs: readonly { topic?: unknown }[],
  call: CallInfo,
): Promise<{ allowed: number[]; denied: Denied[] }> {
  let application = identity?.application === '' ? undefined : identity?.application;
  if (application === undefined && who.principal.application !== undefined && identity) {
    identity.application = who.principal.application;
    application = who.principal.application;
  }
  const allowed: number[] = [];
  const denied: Denied[] = [];
  for (const [i, s] of subs.entries()) {
    const topic = String(s.topic ?? '');
    const d = await guard.allows(who, { action: 'consume', topic, ...(application === undefined ? {} : { application }) }, call);
    if (d.allowed) allowed.push(i);
    else denied.push({ topic, message: d.reason });
  }
  if (allowed.length === 0 && denied.length > 0) {
    throw new QuireError(Code.PERMISSION_DENIED, denied.map((d) => d.message).join('; '));
  }
  return { allowed, denied };
}

/** The consume service's handlers, guarded (for `createGrpcServer`'s `wrapHandlers`). */
export function guardConsumeHandlers(guard: AccessGuard, onError?: (err: unknown, method: string) => void) {
  const fail = grpcFailure(onError);
  return (definition: grpc.ServiceDefinition, handlers: ConsumeServiceHandlers): ConsumeServiceHandlers => {
    const poll = handlers.Poll;
    const Poll: ConsumeServiceHandlers['Poll'] = (call, callback) => {
      const who = grpcPrincipal(call);
      if (who === undefined) return poll(call, callback);
      const req = call.request;
      filterPoll(guard, who, req.identity, req.subscriptions, { via: 'grpc', method: 'quire.v1.ConsumeService/Poll' }).then(
        ({ allowed, denied }) => {
          req.subscriptions = allowed.map((i) => req.subscriptions[i]!);
          poll(call, (err, res) => callback(err, res && withDenied(res, denied)));
        },
        (err: unknown) => callback(fail('Poll', err)),
      );
    };
    // PollStream: each request on the stream is filtered like a Poll, as the handler reads it;
    // all topics refused ends the stream with PERMISSION_DENIED.
    const pollStream = handlers.PollStream;
    const PollStream: ConsumeServiceHandlers['PollStream'] = (call) => {
      const who = grpcPrincipal(call);
      if (who === undefined) return pollStream(call);
      // The handler answers each request before it reads the next: the refused topics of
      // the request being answered are the last ones filtered.
      let refused: Denied[] = [];
      const iterate = call[Symbol.asyncIterator].bind(call);
      call[Symbol.asyncIterator] = async function* () {
        for await (const req of { [Symbol.asyncIterator]: iterate }) {
          const { allowed, denied } = await filterPoll(guard, who, req.identity, req.subscriptions, { via: 'grpc', method: 'quire.v1.ConsumeService/PollStream' });
          req.subscriptions = allowed.map((i) => req.subscriptions[i]!);
          refused = denied;
          yield req;
        }
      } as typeof call[typeof Symbol.asyncIterator];
      const write = call.write.bind(call);
      call.write = ((res: Parameters<typeof write>[0], ...rest: unknown[]) => (write as (...args: unknown[]) => boolean)(withDenied(res, refused), ...rest)) as typeof call.write;
      return pollStream(call);
    };
    return guardGrpcHandlers(definition, { ...handlers, Poll, PollStream }, guard, GRPC_RULES, 'quire.v1.ConsumeService');
  };
}

const deniedOf = new WeakMap<FastifyRequest, Denied[]>();

/**
 * A gRPC poll answer with its refused topics among its errors (Poll and PollStream alike):
 * a copy, since the answer may be an object shared by many polls (grpc.ts keeps shared
 * answers); the answer itself when nothing was refused.
 */
function withDenied<R extends { errors?: unknown[] | null }>(res: R, denied: readonly Denied[]): R {
  if (denied.length === 0) return res;
  return { ...res, errors: [...(res.errors ?? []), ...denied.map((d) => ({ topic: d.topic, errorCode: Code.PERMISSION_DENIED, errorMessage: d.message }))] };
}

/** True when access control refused some of this poll's topics (its answer gets their errors, rest.ts must not send a shared answer as is). */
export function pollHasDenied(req: FastifyRequest): boolean {
  return deniedOf.has(req);
}

/** Guard the REST API; a poll's refused topics join its `errors`. */
export function installConsumeAuth(rest: FastifyInstance, guard: AccessGuard): void {
  installRestAuth(rest, guard, REST_RULES);
  if (!guard.enabled) return;
  rest.addHook('preHandler', async (req) => {
    if (req.routeOptions.url !== '/v1/poll' || req.method !== 'POST') return;
    const who = restPrincipal(req);
    const body = req.body as { identity?: { application?: string }; subscriptions?: { topic?: unknown }[] } | undefined;
    if (who === undefined || body === undefined || body === null) return;
    if (body.identity === undefined && who.principal.application !== undefined) body.identity = {};
    const subs = body.subscriptions ?? [];
    const { allowed, denied } = await filterPoll(guard, who, body.identity, subs, { via: 'rest', method: 'POST /v1/poll' });
    body.subscriptions = allowed.map((i) => subs[i]!);
    if (denied.length > 0) deniedOf.set(req, denied);
  });
  rest.addHook('preSerialization', async (req, _reply, payload) => {
    const denied = deniedOf.get(req);
    if (denied === undefined || typeof payload !== 'object' || payload === null) return payload;
    const p = payload as { errors?: unknown[] };
    return { ...p, errors: [...(p.errors ?? []), ...denied.map((d) => ({ topic: d.topic, code: Code.PERMISSION_DENIED, message: d.message }))] };
  });
}
