/**
 * Access control at the transport edge, shared by both services: who is calling (an API
 * token from `Authorization: Bearer …`, the same header on REST and as gRPC metadata), and
 * whether `@quire/core`'s `authorize` lets them. A service describes each route / method
 * once (`RestRules`, `GrpcRules`: which action, on which topic of the request) and installs
 * the guards with `installRestAuth` / `guardGrpcHandlers`; the handlers stay unaware.
 *
 * - No token, a malformed or unknown one, a revoked or an expired one: UNAUTHENTICATED (401).
 * - A token whose role or prefixes do not allow the call: PERMISSION_DENIED (403).
 * - Every refusal is written to the audit log (`access.denied`, with the token's id and
 *   name but never the token itself), and the call's actor becomes the token's name
 *   (the self-declared `x-quire-actor` header is overwritten).
 *
 * Tokens: `quire_<id>_<secret>` with 256 random bits of secret; the store keeps only the
 * SHA-256 of the secret. A plain hash is enough because the secret is random and long: a
 * slow password hash (bcrypt, scrypt) protects guessable passwords from a stolen table,
 * and no table helps guess 256 random bits; a fast hash keeps the check per request cheap.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  Code,
  QuireError,
  authorize,
  bearerToken,
  formatTokenString,
  parseTokenString,
  tokenExpired,
  tokenView,
  validateTokenInput,
} from '@quire/core';
import type { AccessRequest, ApiToken, ApiTokenView, Clock, MetadataStore, NewTokenInput, Principal } from '@quire/core';
import { grpcErrorOf } from './errors.ts';
import type { AuthConfig } from './config.ts';

export const ACTOR_HEADER = 'x-quire-actor';
export const AUTH_HEADER = 'authorization';
/** The actor of a call that names none. */
export const ANONYMOUS_ACTOR = 'anonymous';

/**
 * Who a REST call acts as, for the audit log: its `x-quire-actor` header (the token's name
 * once the access guard has run), or "anonymous" when absent or empty.
 */
export function restActor(req: FastifyRequest): string {
  const v = req.headers[ACTOR_HEADER];
  return actorOrAnonymous(Array.isArray(v) ? v[0] : v);
}

/** Who a gRPC call acts as: the `x-quire-actor` metadata, as `restActor`. */
export function grpcActor(metadata: grpc.Metadata): string {
  const v = metadata.get(ACTOR_HEADER)[0];
  return actorOrAnonymous(typeof v === 'string' ? v : undefined);
}

function actorOrAnonymous(v: string | undefined): string {
  return v === undefined || v === '' ? ANONYMOUS_ACTOR : v;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A fresh token string (`quire_<16 hex id>_<43 base64url secret>`, 256 random bits), stored nowhere. */
export function mintTokenString(): string {
  return formatTokenString(randomBytes(8).toString('hex'), randomBytes(32).toString('base64url'));
}

/** Create a token: a fresh id and secret, the hash stored, the creation audited. The token string is returned once. */
export async function issueToken(
  store: MetadataStore,
  input: NewTokenInput,
  createdBy: string,
  clock: Clock = { now: () => Date.now() },
): Promise<{ token: ApiTokenView; secret: string }> {
  const secret = mintTokenString();
  return { token: await registerToken(store, input, createdBy, secret, clock), secret };
}

/**
 * Register a token whose string was made elsewhere (`mintTokenString`, e.g. by an operator
 * for a deployment's Secret): only the hash of its secret is stored, the creation audited.
 * ALREADY_EXISTS when its id is taken; INVALID_ARGUMENT (field `token`) when it is no Quire token.
 */
export async function registerToken(
  store: MetadataStore,
  input: NewTokenInput,
  createdBy: string,
  tokenString: string,
  clock: Clock = { now: () => Date.now() },
): Promise<ApiTokenView> {
  const settings = validateTokenInput(input, clock.now());
  const parsed = parseTokenString(tokenString);
  if (parsed === undefined) throw QuireError.invalid('token', 'is not a Quire token (quire_<16 hex digits>_<43 base64url characters>)');
  const { id, secret } = parsed;
  const record: ApiToken = { id, ...settings, secretHash: hashSecret(secret), createdAt: clock.now(), createdBy };
  await store.createToken(record);
  await store.appendAudit({
    id: randomUUID(),
    at: record.createdAt,
    actor: createdBy,
    action: 'token.create',
    details: {
      tokenId: id,
      name: record.name,
      role: record.role,
      prefixes: record.prefixes,
      ...(record.application ? { application: record.application } : {}),
      ...(record.expiresAt === undefined ? {} : { expiresAt: record.expiresAt }),
    },
  });
  return tokenView(record);
}

/**
 * A deployment's first admin token (`QUIRE_BOOTSTRAP_ADMIN_TOKEN`, registered by `quire
 * migrate`): registered as an admin token when the store has no token of its id yet;
 * otherwise left as it is (a rerun changes nothing, and a bootstrap token revoked after a
 * rotation stays revoked). A token of that id with another secret is a conflict.
 */
export async function ensureBootstrapAdminToken(
  store: MetadataStore,
  tokenString: string,
  by: string,
  name = 'bootstrap-admin',
): Promise<{ token: ApiTokenView; created: boolean }> {
  return ensureDeploymentToken(store, tokenString, by, { name, role: 'admin' }, 'QUIRE_BOOTSTRAP_ADMIN_TOKEN');
}

/**
 * A token a deployment made itself (`quire tokens mint`) and hands to a process in its
 * configuration (`variable`): registered with `settings` when the store has no token of its
 * id yet, else left as it is (reruns change nothing; a revoked one stays revoked). A token
 * of that id with another secret is a conflict. Used by `quire migrate` for the first
 * admin token and the consume services' change-hint token.
 */
export async function ensureDeploymentToken(
  store: MetadataStore,
  tokenString: string,
  by: string,
  settings: { name: string; role: ApiToken['role'] },
  variable: string,
): Promise<{ token: ApiTokenView; created: boolean }> {
  const parsed = parseTokenString(tokenString);
  if (parsed === undefined) throw QuireError.invalid('token', 'is not a Quire token (quire_<16 hex digits>_<43 base64url characters>)');
  const existing = async (): Promise<{ token: ApiTokenView; created: boolean } | undefined> => {
    const t = await store.getToken(parsed.id);
    if (t === undefined) return undefined;
    if (t.secretHash !== hashSecret(parsed.secret)) {
      throw new QuireError(Code.ALREADY_EXISTS, `token ${parsed.id} already exists with another secret: ${variable} must be a freshly minted token (quire tokens mint)`, { field: 'token' });
    }
    return { token: tokenView(t), created: false };
  };
  const before = await existing();
  if (before !== undefined) return before;
  try {
    return { token: await registerToken(store, settings, by, tokenString), created: true };
  } catch (err) {
    // Another migration registered it at the same moment.
    const after = err instanceof QuireError && err.code === Code.ALREADY_EXISTS ? await existing() : undefined;
    if (after === undefined) throw err;
    return after;
  }
}

export async function revokeToken(store: MetadataStore, id: unknown, by: string, clock: Clock = { now: () => Date.now() }): Promise<ApiTokenView> {
  if (typeof id !== 'string' || !/^[0-9a-f]{16}$/.test(id)) throw QuireError.invalid('id', 'must be a token id (16 lowercase hex digits)');
  const before = await store.getToken(id);
  if (before === undefined) throw QuireError.notFound(`token ${id}`, 'id');
  const t = await store.revokeToken(id, clock.now(), by);
  if (before.revokedAt === undefined) {
    await store.appendAudit({ id: randomUUID(), at: t.revokedAt ?? clock.now(), actor: by, action: 'token.revoke', details: { tokenId: id, name: t.name } });
  }
  return tokenView(t);
}

export async function listTokenViews(store: MetadataStore): Promise<ApiTokenView[]> {
  return (await store.listTokens()).map(tokenView);
}

export interface AccessGuardOptions {
  store: MetadataStore;
  enabled: boolean;
  /** How long a verified token is trusted before the store is read again. */
  cacheMs: number;
  clock?: Clock;
  /** Store errors while auditing a refusal (the refusal itself still goes out). */
  onError?: (err: unknown, what: string) => void;
}

export interface CallInfo {
  via: 'rest' | 'grpc';
  /** Route (`POST /v1/topics/:topic/pins`) or gRPC method (`PublishService/Pin`). */
  method: string;
}

/** The authenticated caller of a request when access control is on. */
export class AccessGuard {
  readonly enabled: boolean;
  readonly #store: MetadataStore;
  readonly #cacheMs: number;
  readonly #clock: Clock;
  readonly #onError: (err: unknown, what: string) => void;
  readonly #cache = new Map<string, { token: ApiToken; until: number }>();

  constructor(options: AccessGuardOptions) {
    this.enabled = options.enabled;
    this.#store = options.store;
    this.#cacheMs = options.cacheMs;
    this.#clock = options.clock ?? { now: () => Date.now() };
    this.#onError = options.onError ?? (() => {});
  }

  /** The principal of an `Authorization` header value; undefined when absent, malformed, unknown, revoked or expired. */
  async principalOf(authorization: string | undefined): Promise<{ principal?: Principal; tokenId?: string; why: string }> {
    const raw = bearerToken(authorization);
    if (raw === undefined) return { why: authorization === undefined ? 'no token' : 'not a Bearer token' };
    const parsed = parseTokenString(raw);
    if (parsed === undefined) return { why: 'malformed token' };
    const token = await this.#tokenById(parsed.id);
    if (token === undefined) return { tokenId: parsed.id, why: 'unknown token' };
    const presented = Buffer.from(hashSecret(parsed.secret), 'hex');
    const stored = Buffer.from(token.secretHash, 'hex');
    if (presented.length !== stored.length || !timingSafeEqual(presented, stored)) return { tokenId: parsed.id, why: 'unknown token' };
    if (token.revokedAt !== undefined) return { tokenId: parsed.id, why: 'revoked token' };
    if (tokenExpired(token, this.#clock.now())) return { tokenId: parsed.id, why: `expired token (expired ${new Date(token.expiresAt as number).toISOString()})` };
    const principal: Principal = { name: token.name, role: token.role, prefixes: token.prefixes };
    if (token.application !== undefined) principal.application = token.application;
    return { principal, tokenId: token.id, why: '' };
  }

  async #tokenById(id: string): Promise<ApiToken | undefined> {
    const now = this.#clock.now();
    const hit = this.#cache.get(id);
    if (hit !== undefined && hit.until > now) return hit.token;
    const token = await this.#store.getToken(id);
    if (token === undefined) {
      this.#cache.delete(id);
      return undefined;
    }
    if (this.#cacheMs > 0) {
      if (this.#cache.size > 10_000) this.#cache.clear();
      this.#cache.set(id, { token, until: now + this.#cacheMs });
    }
    return token;
  }

  /** Forget a token at once (this process revoked it). */
  forget(id: string): void {
    this.#cache.delete(id);
  }

  /**
   * Authenticate: the principal, or UNAUTHENTICATED (audited). Access control off: undefined,
   * and the call goes on as before.
   */
  async authenticate(authorization: string | undefined, call: CallInfo): Promise<{ principal: Principal; tokenId: string } | undefined> {
    if (!this.enabled) return undefined;
    const who = await this.principalOf(authorization);
    if (who.principal === undefined || who.tokenId === undefined) {
      const message = `${who.why}: send Authorization: Bearer <API token>`;
      await this.#audit(undefined, who.tokenId, undefined, message, Code.UNAUTHENTICATED, call);
      throw new QuireError(Code.UNAUTHENTICATED, message);
    }
    return { principal: who.principal, tokenId: who.tokenId };
  }

  /** Check one request of an authenticated caller; PERMISSION_DENIED (audited) when refused. */
  async check(who: { principal: Principal; tokenId: string }, req: AccessRequest, call: CallInfo): Promise<void> {
    const decision = authorize(who.principal, req);
    if (decision.allowed) return;
    await this.#audit(who.principal, who.tokenId, req, decision.reason, decision.code, call);
    throw new QuireError(decision.code === 'UNAUTHENTICATED' ? Code.UNAUTHENTICATED : Code.PERMISSION_DENIED, decision.reason);
  }

  /** Like `check`, but answers the decision (audited when refused) instead of throwing. */
  async allows(who: { principal: Principal; tokenId: string }, req: AccessRequest, call: CallInfo): Promise<{ allowed: true } | { allowed: false; reason: string }> {
    try {
      await this.check(who, req, call);
      return { allowed: true };
    } catch (err) {
      if (err instanceof QuireError) return { allowed: false, reason: err.message };
      throw err;
    }
  }

  /** One `access.denied` entry; `req` is undefined when the caller was not even authenticated (the request is not decided yet). */
  async #audit(principal: Principal | undefined, tokenId: string | undefined, req: AccessRequest | undefined, reason: string, code: string, call: CallInfo): Promise<void> {
    try {
      await this.#store.appendAudit({
        id: randomUUID(),
        at: this.#clock.now(),
        actor: principal?.name ?? 'anonymous',
        action: 'access.denied',
        ...(req?.topic === undefined || req.topic === '' ? {} : { topic: req.topic }),
        reason,
        details: { code, ...(req === undefined ? {} : { action: req.action }), via: call.via, method: call.method, ...(tokenId === undefined ? {} : { tokenId }), ...(principal ? { role: principal.role } : {}) },
      });
    } catch (err) {
      this.#onError(err, 'audit of a refused request');
    }
  }
}

// ---- REST ---------------------------------------------------------------------------------------

/** What a route needs: `public` (no token), or the access requests a call makes (several for a batch). */
export type RestRule = 'public' | ((req: FastifyRequest) => AccessRequest | AccessRequest[]);
/** Rules by `METHOD url-as-registered`, e.g. `GET /v1/topics/:topic`. */
export type RestRules = Record<string, RestRule>;

/** Liveness, readiness, metrics and the API docs: open on every service, so probes and scrapers need no token. */
export const OPERATIONS_ROUTES: RestRules = {
  'GET /healthz': 'public',
  'GET /metrics': 'public',
  'GET /readyz': 'public',
  'GET /docs': 'public',
  'GET /docs/': 'public',
  'GET /docs/json': 'public',
  'GET /docs/yaml': 'public',
  'GET /docs/static/*': 'public',
  'GET /docs/*': 'public',
  'GET /openapi.json': 'public',
};

const principals = new WeakMap<FastifyRequest, { principal: Principal; tokenId: string }>();

/** The authenticated caller of a REST request (access control on). */
export function restPrincipal(req: FastifyRequest): { principal: Principal; tokenId: string } | undefined {
  return principals.get(req);
}

/**
 * Guard every route of `app`: authenticate in `onRequest` (before the body is read),
 * authorize in `preHandler` (params, query and body parsed). A route without a rule is
 * for admins only (a route added without thinking about access is not left open).
 */
export function installRestAuth(app: FastifyInstance, guard: AccessGuard, rules: RestRules): void {
  if (!guard.enabled) return;
  const ruleOf = (req: FastifyRequest): RestRule | undefined => {
    const url = req.routeOptions.url;
    if (url === undefined) return 'public'; // no route: the 404 handler answers
    return rules[`${req.method} ${url}`];
  };
  app.addHook('onRequest', async (req) => {
    const rule = ruleOf(req);
    if (rule === 'public') return;
    const who = await guard.authenticate(header(req, AUTH_HEADER), { via: 'rest', method: `${req.method} ${req.routeOptions.url ?? req.url}` });
    if (who === undefined) return;
    principals.set(req, who);
    req.headers[ACTOR_HEADER] = who.principal.name;
  });
  app.addHook('preHandler', async (req) => {
    const who = principals.get(req);
    if (who === undefined) return;
    const rule = ruleOf(req);
    const requests = rule === undefined ? [{ action: 'manage' as const }] : rule === 'public' ? [] : [rule(req)].flat();
    for (const r of requests) await guard.check(who, r, { via: 'rest', method: `${req.method} ${req.routeOptions.url ?? req.url}` });
  });
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

// ---- gRPC ---------------------------------------------------------------------------------------

type AnyCall = {
  metadata: grpc.Metadata;
  request?: unknown;
  emit(event: 'error', status: unknown): boolean;
  [Symbol.asyncIterator]?: () => AsyncIterator<unknown>;
};

export interface GrpcRule {
  /** The access requests of a call, from its request message (the first message of a client stream). */
  requests(message: unknown): AccessRequest | AccessRequest[];
}
const grpcPrincipals = new WeakMap<object, { principal: Principal; tokenId: string }>();

/** The authenticated caller of a gRPC call (access control on). */
export function grpcPrincipal(call: object): { principal: Principal; tokenId: string } | undefined {
  return grpcPrincipals.get(call);
}

export type GrpcRules = Record<string, GrpcRule | ((message: unknown) => AccessRequest | AccessRequest[])>;

/**
 * Wrap a service's handlers (every method of `definition`): authenticate from the
 * `authorization` metadata, authorize with the method's rule (a method without a rule is
 * for admins only), set the actor, then call the handler. Client streams are authorized on
 * their first message and authenticated again on every later one. Access control off: the
 * handlers unchanged.
 */
export function guardGrpcHandlers<H extends object>(definition: grpc.ServiceDefinition, handlers: H, guard: AccessGuard, rules: GrpcRules, serviceName: string): H {
  if (!guard.enabled) return handlers;
  const out: Record<string, grpc.UntypedHandleCall> = {};
  for (const [name, handler] of Object.entries(handlers as Record<string, grpc.UntypedHandleCall>)) {
    const def = definition[name];
    if (def === undefined) {
      out[name] = handler;
      continue;
    }
    const rule = rules[name];
    const requestsOf = (message: unknown): AccessRequest[] =>
      rule === undefined ? [{ action: 'manage' }] : [typeof rule === 'function' ? rule(message) : rule.requests(message)].flat();
    const info: CallInfo = { via: 'grpc', method: `${serviceName}/${name}` };
    out[name] = ((call: AnyCall, callback?: grpc.sendUnaryData<unknown>) => {
      const refuse = (err: unknown): void => {
        const s = grpcErrorOf(err);
        const status = { code: s.code, details: s.details, metadata: s.metadata };
        if (callback !== undefined) callback(status);
        else call.emit('error', status);
      };
      const auth = call.metadata.get(AUTH_HEADER)[0];
      void guard.authenticate(typeof auth === 'string' ? auth : undefined, info).then(async (who) => {
        if (who === undefined) return (handler as (c: unknown, cb?: unknown) => void)(call, callback);
        call.metadata.set(ACTOR_HEADER, who.principal.name);
        grpcPrincipals.set(call, who);
        if (def.requestStream) {
          // Check the first message when the handler reads it.
          const iterate = call[Symbol.asyncIterator]?.bind(call);
          if (iterate !== undefined) {
            call[Symbol.asyncIterator] = async function* () {
              let first = true;
              const it = iterate();
              for (;;) {
                const r = await it.next();
                if (r.done) return;
                if (first) {
                  first = false;
                  for (const req of requestsOf(r.value)) await guard.check(who, req, info);
                } else {
                  // A long-lived stream (PollStream) is not grandfathered: every later
                  // message authenticates again, so a token revoked or expired meanwhile
                  // ends the stream with UNAUTHENTICATED (cached like any call).
                  await guard.authenticate(typeof auth === 'string' ? auth : undefined, info);
                }
                yield r.value;
              }
            } as () => AsyncIterator<unknown>;
          }
        } else {
          for (const req of requestsOf(call.request)) await guard.check(who, req, info);
        }
        return (handler as (c: unknown, cb?: unknown) => void)(call, callback);
      }).catch(refuse);
    }) as grpc.UntypedHandleCall;
  }
  return out as H;
}

/** gRPC's empty-string "unset" → undefined. */
export function topicOrAll(topic: unknown): string | undefined {
  return typeof topic === 'string' && topic !== '' ? topic : undefined;
}

/** The token API's JSON for a token (REST): the view as is. */
export type { ApiTokenView };

/** The guard of a service, from its `auth` config (off when absent). */
export function createAccessGuard(auth: AuthConfig | undefined, store: MetadataStore, onError?: (err: unknown, what: string) => void): AccessGuard {
  return new AccessGuard({ store, enabled: auth?.enabled ?? false, cacheMs: auth?.cacheMs ?? 2000, ...(onError ? { onError } : {}) });
}
