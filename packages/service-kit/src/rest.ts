/**
 * Fastify's error and not-found handlers shared by every Quire REST API: any error a
 * route (or fastify itself) raises is answered through `httpErrorOf`, the body
 * `{ error: { code, message, field } }`; 5xx errors are logged with their cause.
 */
import type { FastifyInstance } from 'fastify';
import { Code } from '@quire/core';
import type { LogLevel } from './config.ts';
import { httpErrorOf, type ErrorBody } from './errors.ts';

/** Fastify's `logger` option for the configured log level (`silent`: no logger). */
export function fastifyLogger(level: LogLevel): false | { level: LogLevel } {
  return level === 'silent' ? false : { level };
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
