/**
 * The REST side of observability, in two steps because fastify needs them in that order:
 *
 * 1. `installApiDocs(app, info)`, right after `Fastify()` and before any route: response
 *    validation (@fastify/response-validation: every answer is checked against its
 *    route's response schema before it is serialized, so a field the schema does not
 *    list is a 500 naming it, never silently dropped by the serializer), the OpenAPI
 *    document built from the route schemas (@fastify/swagger) and its UI on `/docs`
 *    (@fastify/swagger-ui; the JSON at `/docs/json`), and the `x-request-id` echo.
 * 2. `mountObservability(app, …)`, once the routes are there: `GET /metrics`,
 *    `GET /readyz`, and the request counters.
 *
 * `REQUEST_ID_OPTIONS` go into `Fastify({...})`: a request's id is its `x-request-id`
 * header when the caller sent one, else a UUID; every log line of the request carries it
 * as `requestId`, and the answer carries it back in `x-request-id`.
 */
import { randomUUID } from 'node:crypto';
import responseValidation from '@fastify/response-validation';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';

type ChildLoggerFactory = NonNullable<FastifyServerOptions['childLoggerFactory']>;
import type { QuireMetrics } from './metrics.ts';
import type { Readiness } from './readiness.ts';

export const REQUEST_ID_HEADER = 'x-request-id';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type LogFn = (...args: unknown[]) => void;
interface PinoLike extends FastifyBaseLogger {
  isLevelEnabled?: (level: string) => boolean;
  bindings?: () => Record<string, unknown>;
}

/**
 * A request's logger, made only when something is logged at an enabled level. Fastify
 * makes a child logger per request (pino `child()` with the request id bound: an object
 * and a serialized binding string, kept as long as the request, with redaction) even when
 * the level keeps every request line out (`warn` and above: no access log). This one is
 * a small object that asks the parent whether a level is enabled and makes the real child
 * the first time a line is written, so at `info` and below every line is as before
 * (with `requestId`), and at `warn` a request that logs nothing costs no child.
 */
export class RequestLogger {
  readonly #parent: PinoLike;
  readonly #bindings: Record<string, unknown>;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: PinoLike, bindings: Record<string, unknown>) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  /** The real child logger (made on first use). */
  get real(): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings));
  }

  /** Whether the real child exists (for tests). */
  get materialized(): boolean {
    return this.#child !== undefined;
  }

  get level(): string {
    return this.#child?.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  isLevelEnabled(level: string): boolean {
    const l = (this.#child ?? this.#parent) as PinoLike;
    return l.isLevelEnabled?.(level) ?? true;
  }

  #log(level: Level, args: unknown[]): void {
    if (this.#child === undefined && this.#parent.isLevelEnabled?.(level) === false) return;
    (this.real[level] as LogFn)(...args);
  }

  fatal(...args: unknown[]): void {
    this.#log('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#log('error', args);
  }
  warn(...args: unknown[]): void {
    this.#log('warn', args);
  }
  info(...args: unknown[]): void {
    this.#log('info', args);
  }
  debug(...args: unknown[]): void {
    this.#log('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#log('trace', args);
  }
  silent(): void {}

  child(bindings: Record<string, unknown>, options?: Record<string, unknown>): FastifyBaseLogger {
    return this.real.child(bindings, options);
  }

  bindings(): Record<string, unknown> {
    return (this.real as PinoLike).bindings?.() ?? { ...this.#bindings };
  }
}

/**
 * Fastify's `childLoggerFactory`: a `RequestLogger` (lazy child) when the parent can say
 * which levels are enabled (pino) and the route sets no level or serializers of its own;
 * else the plain child.
 */
export const lazyChildLoggerFactory: ChildLoggerFactory = function (logger: FastifyBaseLogger, bindings: Record<string, unknown>, options: object) {
  const parent = logger as PinoLike;
  const opts = options as { level?: string; serializers?: unknown };
  if (typeof parent.isLevelEnabled !== 'function' || opts.level !== undefined || opts.serializers !== undefined) return logger.child(bindings, options);
  return new RequestLogger(parent, bindings) as unknown as FastifyBaseLogger;
};

/**
 * A UUID as one flat string. Node builds `randomUUID()` by concatenation: a rope of a dozen
 * pieces (~400 bytes) that every held request would keep as its id; reading one character
 * makes V8 flatten it (36 characters).
 */
function flatUuid(): string {
  const id = randomUUID();
  id.charCodeAt(0);
  return id;
}

/**
 * Fastify options: request ids from `x-request-id` (else a UUID), logged as `requestId`;
 * request loggers made only when they write (`lazyChildLoggerFactory`).
 */
export const REQUEST_ID_OPTIONS: {
  requestIdHeader: string;
  logController: LogController;
  genReqId: () => string;
  childLoggerFactory: ChildLoggerFactory;
} = {
  requestIdHeader: REQUEST_ID_HEADER,
  logController: new LogController({ requestIdLogLabel: 'requestId' }),
  genReqId: flatUuid,
  childLoggerFactory: lazyChildLoggerFactory,
};

export interface ApiInfo {
  title: string;
  description: string;
  version?: string;
}

/** The error body every route may answer (`@quire/service-kit`'s `ErrorBody`). */
export const errorBodySchema = {
  type: 'object',
  description: 'An error: its code (google.rpc.Code name), a message, and the request field it is about, when there is one',
  additionalProperties: false,
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
    },
  },
} as const;

/** Register response validation, the OpenAPI document and `/docs`. Call before any route. */
export async function installApiDocs(app: FastifyInstance, info: ApiInfo): Promise<void> {
  await app.register(responseValidation, {
    ajv: { coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: false, allowUnionTypes: true, formats: { binary: true } },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: info.title, description: info.description, version: info.version ?? '1.0.0' },
    },
    // Every route shares the error answer; a route's own 4xx/5xx schema wins.
    transform: ({ schema, url }) => {
      const s = (schema ?? {}) as Record<string, unknown>;
      const response = { ...((s.response as Record<string, unknown> | undefined) ?? {}) };
      if (response['4xx'] === undefined && response.default === undefined) response['4xx'] = { ...errorBodySchema, description: 'Bad request, unknown resource, conflict…' };
      if (response['5xx'] === undefined && response.default === undefined) response['5xx'] = { ...errorBodySchema, description: 'The service or a dependency failed' };
      return { schema: { ...s, response } as never, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // Callback hooks, not async ones: an async hook costs a promise and a microtask per request.
  app.addHook('onSend', (req, reply, payload, done) => {
    void reply.header(REQUEST_ID_HEADER, req.id);
    done(null, payload);
  });
}

const checkSchema = {
  type: 'object',
  required: ['status'],
  additionalProperties: true,
  properties: {
    status: { type: 'string', enum: ['up', 'degraded', 'down'] },
    error: { type: 'string' },
    latencyMs: { type: 'number' },
  },
} as const;

const readySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['ready', 'status', 'checks'],
  properties: {
    ready: { type: 'boolean' },
    status: { type: 'string', enum: ['ready', 'degraded', 'not_ready'] },
    checks: { type: 'object', additionalProperties: checkSchema },
  },
} as const;

export interface MountOptions {
  metrics: QuireMetrics;
  readiness: Readiness;
}

/** `GET /metrics`, `GET /readyz` and the request counters. */
export function mountObservability(app: FastifyInstance, options: MountOptions): void {
  const { metrics, readiness } = options;

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        tags: ['operations'],
        response: { 200: { description: 'The metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_req, reply) => {
      const { contentType, body } = await metrics.scrape();
      return reply.header('content-type', contentType).send(body);
    },
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: 200 when this instance can serve (its dependencies answer), 503 when not; the body has each check',
        tags: ['operations'],
        response: { 200: readySchema, 503: readySchema },
      },
    },
    async (_req, reply) => {
      const report = await readiness.check();
      return reply.status(report.ready ? 200 : 503).send(report);
    },
  );

  // A callback hook: no promise per request.
  app.addHook('onResponse', (req, reply, done) => {
    const method = req.method;
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method, route }, reply.elapsedTime / 1000);
    done();
  });
}
