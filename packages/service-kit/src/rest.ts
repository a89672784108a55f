/**
 * Fastify's error and not-found handlers shared by every Quire REST API: any error a
 * route (or fastify itself) raises is answered through `httpErrorOf`, the body
 * `{ error: { code, message, field } }`; 5xx errors are logged with their cause.
 */
import type { FastifyInstance } from 'fastify';
import { Code } from '@quire/core';
import type { LogLevel } from './config.ts';
import { httpErrorOf, type ErrorBody } from './errors.ts';

/**
 * Where secrets could appear in a log line: credential headers of a logged request (or
 * of a logged error's request), and credential fields of logged objects. pino replaces
 * them with `[redacted]`.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-quire-token"]',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-quire-token"]',
  'headers["x-api-key"]',
  '*.headers.authorization',
  '*.headers["x-quire-token"]',
  '*.headers.cookie',
  '*.headers["x-api-key"]',
  'authorization',
  'token',
  '*.token',
  'secretAccessKey',
  '*.secretAccessKey',
  '*.*.secretAccessKey',
];

/** Fastify's `logger` option (pino: JSON lines) for the configured log level (`silent`: no logger). */
export function fastifyLogger(level: LogLevel): false | { level: LogLevel; redact: { paths: string[]; censor: string } } {
  return level === 'silent' ? false : { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const { status, body, internal } = httpErrorOf(err);
    if (internal) req.log.error({ err }, 'request failed');
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { error: { code: Code.NOT_FOUND, message: `no route ${req.method} ${req.url.split('?')[0]}` } };
    void reply.status(404).send(body);
  });
}
