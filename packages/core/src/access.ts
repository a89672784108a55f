/**
 * Access control: who may do what to which topic. One pure decision,
 * `authorize(principal, request)`, used by every transport (REST, gRPC of both services;
 * the CLI and UI go through them), and the token model it decides on.
 *
 * Roles, each limited to its topic prefixes (none = every topic) except admin:
 *
 * | role      | read (topics, versions, releases, pins, rollouts, audit) | publish | operate (release, pin, rollback, rollout) | consume (poll, read payloads) | manage topics, tokens |
 * |-----------|:---:|:---:|:---:|:---:|:---:|
 * | admin     | ✓ | ✓ | ✓ | ✓ | ✓ |
 * | operator  | ✓ |   | ✓ |   |   |
 * | publisher | ✓ | ✓ |   |   |   |
 * | consumer  | ✓ |   |   | ✓ |   |
 * | viewer    | ✓ |   |   |   |   |
 *
 * Publisher and consumer tokens must name at least one prefix (`''` covers every topic).
 * A consumer token may be bound to one application: it then only polls as that
 * application. A topic's `allowedApplications` restricts who may subscribe, for every role
 * (`applicationMayConsume`, also used by the consume service's poll).
 */
import { QuireError } from './errors.ts';
import { LIMITS } from './validation.ts';

export const ROLES = ['admin', 'operator', 'publisher', 'consumer', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const ACTIONS = ['read', 'publish', 'operate', 'consume', 'manage'] as const;
/**
 * - `read`: topic settings, versions' descriptors, releases, pins, rollouts, the audit log
 * - `publish`: new versions (inline, streamed, direct upload, register)
 * - `operate`: release to more scopes, pin, unpin, rollback, rollouts
 * - `consume`: poll, read payload bytes
 * - `manage`: create / update topics, delete versions, run retention, API tokens
 */
export type Action = (typeof ACTIONS)[number];

/** An API token as stored: the secret itself is never stored, only its SHA-256. */
export interface ApiToken {
  /** Public id (part of the token string); the key of the stored record. */
  id: string;
  /** Human label; requests made with the token are audited under this name. */
  name: string;
  role: Role;
  /** Topic prefixes the token covers; empty = every topic (admin, operator, viewer only). */
  prefixes: string[];
  /** Consumer tokens: the one application the token may poll as. */
  application?: string;
  /** Lowercase hex SHA-256 of the token's secret part. */
  secretHash: string;
  createdAt: number;
  createdBy: string;
  /** When the token stops working (ms since the epoch); absent = never. */
  expiresAt?: number;
  revokedAt?: number;
  revokedBy?: string;
}

/** What a decision needs of a token (the authenticated caller). */
export interface Principal {
  name: string;
  role: Role;
  prefixes: readonly string[];
  application?: string;
}

export interface AccessRequest {
  action: Action;
  /** The topic acted on; absent for topic-less calls (list topics, audit of every topic, tokens). */
  topic?: string;
  /** consume: the application the caller says it is (its consumer identity). */
  application?: string;
  /** consume: the topic's `allowedApplications`, when known. */
  allowedApplications?: readonly string[];
}

export type AccessDecision =
  | { allowed: true }
  | { allowed: false; code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED'; reason: string };

const GRANTS: Record<Role, ReadonlySet<Action>> = {
  admin: new Set(ACTIONS),
  operator: new Set<Action>(['read', 'operate']),
  publisher: new Set<Action>(['read', 'publish']),
  consumer: new Set<Action>(['read', 'consume']),
  viewer: new Set<Action>(['read']),
};

/** Whether `role` may perform `action` on some topic (prefixes aside). */
export function roleAllows(role: Role, action: Action): boolean {
  return GRANTS[role].has(action);
}

/** Whether the prefixes cover `topic` (no prefixes = every topic). */
export function prefixesCover(prefixes: readonly string[], topic: string): boolean {
  return prefixes.length === 0 || prefixes.some((p) => topic.startsWith(p));
}

/** A topic's application restriction: none (or empty) lets every application subscribe. */
export function applicationMayConsume(allowedApplications: readonly string[] | undefined, application: string | undefined): boolean {
  return allowedApplications === undefined || allowedApplications.length === 0 || allowedApplications.includes(application ?? '');
}

const deny = (reason: string): AccessDecision => ({ allowed: false, code: 'PERMISSION_DENIED', reason });

/**
 * The one access decision. `undefined` principal = no (valid) token: UNAUTHENTICATED.
 * Topic-less requests: `read` (listing topics, the audit log) needs a token without
 * prefixes unless it is a listing the caller filters; `manage` needs admin.
 */
export function authorize(principal: Principal | undefined, req: AccessRequest): AccessDecision {
  if (principal === undefined) return { allowed: false, code: 'UNAUTHENTICATED', reason: 'an API token is required' };
  const { role } = principal;
  if (!roleAllows(role, req.action)) return deny(`role ${role} may not ${req.action}${req.topic === undefined ? '' : ` on topic ${req.topic}`}`);
  if (role !== 'admin') {
    if (req.topic === undefined) {
      // Every topic at once (e.g. the whole audit log): only tokens that cover every topic.
      if (req.action !== 'read' || principal.prefixes.length > 0) return deny(`role ${role} limited to prefixes may not ${req.action} across every topic`);
    } else if (!prefixesCover(principal.prefixes, req.topic)) {
      return deny(`token ${principal.name} does not cover topic ${req.topic} (prefixes ${principal.prefixes.map((p) => JSON.stringify(p)).join(', ')})`);
    }
  }
  if (req.action === 'consume') {
    if (principal.application !== undefined && req.application !== undefined && req.application !== principal.application) {
      return deny(`token ${principal.name} may only consume as application ${principal.application}, not ${req.application}`);
    }
    const app = principal.application ?? req.application;
    if (!applicationMayConsume(req.allowedApplications, app)) {
      return deny(`application ${JSON.stringify(app ?? '')} may not subscribe to ${req.topic ?? 'this topic'}`);
    }
  }
  return { allowed: true };
}

export interface NewTokenInput {
  name: unknown;
  role: unknown;
  prefixes?: unknown;
  application?: unknown;
  /** When the token stops working, ms since the epoch; absent (or 0) = never. */
  expiresAt?: unknown;
}

/** The settable fields of a token, validated. */
export interface TokenSettings {
  name: string;
  role: Role;
  prefixes: string[];
  application?: string;
  expiresAt?: number;
}

/**
 * Validate the settable fields of a new token; INVALID_ARGUMENT naming the field. With
 * `now`, an expiry must lie in the future (a new token that never works is a mistake);
 * without it (a stored record read back) any expiry time is kept.
 */
export function validateTokenInput(input: NewTokenInput, now?: number): TokenSettings {
  const { name, role, prefixes, application, expiresAt } = input;
  if (typeof name !== 'string' || name.trim() === '') throw QuireError.invalid('name', 'is required (a label for the token)');
  if (name.length > 200) throw QuireError.invalid('name', 'must be at most 200 characters');
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw QuireError.invalid('role', `must be one of ${ROLES.join(', ')}`);
  }
  const r = role as Role;
  let list: string[] = [];
  if (prefixes !== undefined && prefixes !== null) {
    if (!Array.isArray(prefixes)) throw QuireError.invalid('prefixes', 'must be a list of topic prefixes');
    if (prefixes.length > 100) throw QuireError.invalid('prefixes', 'must list at most 100 prefixes');
    list = prefixes.map((p: unknown, i) => {
      if (typeof p !== 'string') throw QuireError.invalid(`prefixes[${i}]`, 'must be a string');
      if (p.length > LIMITS.topicNameMax) throw QuireError.invalid(`prefixes[${i}]`, `must be at most ${LIMITS.topicNameMax} characters`);
      return p;
    });
  }
  if (r === 'admin' && list.length > 0) throw QuireError.invalid('prefixes', 'an admin token covers every topic; give no prefixes');
  if ((r === 'publisher' || r === 'consumer') && list.length === 0) {
    throw QuireError.invalid('prefixes', `a ${r} token needs at least one topic prefix ("" covers every topic)`);
  }
  const out: TokenSettings = { name: name.trim(), role: r, prefixes: list };
  if (application !== undefined && application !== null && application !== '') {
    if (r !== 'consumer') throw QuireError.invalid('application', 'only a consumer token is bound to an application');
    if (typeof application !== 'string' || application.length > LIMITS.scopeValueMax) {
      throw QuireError.invalid('application', `must be an application name of at most ${LIMITS.scopeValueMax} characters`);
    }
    out.application = application;
  }
  if (expiresAt !== undefined && expiresAt !== null && expiresAt !== 0) {
    if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt < 0) {
      throw QuireError.invalid('expiresAt', 'must be a time in milliseconds since the epoch (0 or absent: never expires)');
    }
    if (now !== undefined && expiresAt <= now) throw QuireError.invalid('expiresAt', `must be in the future (it is ${new Date(expiresAt).toISOString()}, now is ${new Date(now).toISOString()})`);
    out.expiresAt = expiresAt;
  }
  return out;
}

/** True when the token has expired at `now` (a token without expiry never does). */
export function tokenExpired(t: Pick<ApiToken, 'expiresAt'>, now: number): boolean {
  return t.expiresAt !== undefined && now >= t.expiresAt;
}

/** Token strings: `quire_<16 hex id>_<43 base64url secret>` (256 random bits). */
const TOKEN_RE = /^quire_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** Split a presented token into its id and secret; undefined when it is not a Quire token. */
export function parseTokenString(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(token);
  return m === null ? undefined : { id: m[1]!, secret: m[2]! };
}

export function formatTokenString(id: string, secret: string): string {
  return `quire_${id}_${secret}`;
}

/** `Authorization: Bearer <token>` → the token; undefined when absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m === null ? undefined : m[1];
}

/** The token as shown to users and APIs: everything but the hash. */
export type ApiTokenView = Omit<ApiToken, 'secretHash'>;
export function tokenView(t: ApiToken): ApiTokenView {
  const { secretHash: _hash, ...view } = t;
  return view;
}
