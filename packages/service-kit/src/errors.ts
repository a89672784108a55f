/**
 * The transport edge's one error mapping, used by the fastify and grpc-js handlers of
 * every Quire service. Everything thrown by a handler becomes a
 * `QuireError` here (`toQuireError`), and that error becomes an HTTP status plus the JSON
 * body `{ error: { code, message, field } }` (`httpErrorOf`) or a gRPC status with the
 * field in the trailers (`grpcErrorOf`). The code → status tables are `@quire/core`'s
 * `httpStatusOf` / `grpcStatusOf`; the few HTTP statuses that say more than the code
 * (413, 415) are listed in `HTTP_OVERRIDES`.
 */
import * as grpc from '@grpc/grpc-js';
import { Code, QuireError, grpcStatusOf, httpStatusOf } from '@quire/core';

export interface ErrorBody {
  error: { code: Code; message: string; field?: string };
}

/** gRPC trailer naming the request field an error is about. */
export const FIELD_TRAILER = 'x-quire-field';
/** gRPC trailer carrying the Quire code name. */
export const CODE_TRAILER = 'x-quire-code';

/** The message clients see for errors we did not anticipate (details stay in the log). */
const INTERNAL_MESSAGE = 'internal error';

/** Fastify's own errors, by `code`: the Quire code, the HTTP status and the field. */
const FASTIFY_ERRORS: Record<string, { code: Code; status: number; field?: string; message?: string }> = {
  // Malformed JSON body.
  FST_ERR_CTP_INVALID_JSON_BODY: { code: Code.INVALID_ARGUMENT, status: 400, field: 'body', message: 'body: malformed JSON' },
  // Content-Type: application/json with an empty body.
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: Code.INVALID_ARGUMENT, status: 400, field: 'body', message: 'body: is empty' },
  // No parser for the request's Content-Type.
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: Code.INVALID_ARGUMENT, status: 415, field: 'content-type' },
  // Body over the route's bodyLimit.
  FST_ERR_CTP_BODY_TOO_LARGE: { code: Code.RESOURCE_EXHAUSTED, status: 413, field: 'body' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: Code.INVALID_ARGUMENT, status: 400, field: 'content-length' },
  // Unknown route / method.
  FST_ERR_NOT_FOUND: { code: Code.NOT_FOUND, status: 404 },
};

/** HTTP statuses more precise than the code's own, for errors made from fastify's (above). */
const HTTP_OVERRIDES = new WeakMap<QuireError, number>();

interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  validation?: Array<{ instancePath?: string; params?: Record<string, unknown>; message?: string }>;
  validationContext?: string;
}

/** Turn anything thrown into a QuireError (framework errors included); unknown errors → INTERNAL. */
export function toQuireError(err: unknown): QuireError {
  if (err instanceof QuireError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyLikeError;
  // An answer that does not match its route's response schema (@fastify/response-validation):
  // the server's fault, not the request's.
  if (e.code === 'FST_RESPONSE_VALIDATION_FAILED_VALIDATION') return new QuireError(Code.INTERNAL, INTERNAL_MESSAGE, { cause: err });
  if (Array.isArray(e.validation)) {
    const first = e.validation[0];
    const field = validationField(e.validationContext, first);
    const q = new QuireError(Code.INVALID_ARGUMENT, `${field}: ${first?.message ?? 'is invalid'}`, { field, cause: err });
    HTTP_OVERRIDES.set(q, 400);
    return q;
  }
  const known = typeof e.code === 'string' ? FASTIFY_ERRORS[e.code] : undefined;
  if (known !== undefined) {
    const message = known.message ?? (known.field ? `${known.field}: ${String(e.message)}` : String(e.message));
    const q = new QuireError(known.code, message, known.field === undefined ? { cause: err } : { field: known.field, cause: err });
    HTTP_OVERRIDES.set(q, known.status);
    return q;
  }
  // Any other client error fastify raises (4xx) keeps its status; its text is fastify's own.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const q = new QuireError(e.statusCode === 404 ? Code.NOT_FOUND : Code.INVALID_ARGUMENT, String(e.message), { cause: err });
    HTTP_OVERRIDES.set(q, e.statusCode);
    return q;
  }
  return new QuireError(Code.INTERNAL, INTERNAL_MESSAGE, { cause: err });
}

/** Dotted field of an ajv error from fastify's validation (`/metadata/k` → `metadata.k`). */
function validationField(context: string | undefined, e: { instancePath?: string; params?: Record<string, unknown> } | undefined): string {
  const path = (e?.instancePath ?? '')
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (/^[0-9]+$/.test(s) ? `[${s}]` : `.${s}`))
    .join('');
  const extra = e?.params?.missingProperty ?? e?.params?.additionalProperty;
  const leaf = typeof extra === 'string' ? `${path}.${extra}` : path;
  const field = leaf.replace(/^\./, '');
  if (field !== '') return field;
  return context === 'querystring' ? 'query' : (context ?? 'body');
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  /** The error is ours to log (a 5xx). */
  internal: boolean;
}

export function httpErrorOf(err: unknown): HttpError {
  const q = toQuireError(err);
  const status = HTTP_OVERRIDES.get(q) ?? httpStatusOf(q.code);
  const internal = status >= 500;
  const message = q.code === Code.INTERNAL ? INTERNAL_MESSAGE : q.message;
  const body: ErrorBody = { error: { code: q.code, message } };
  if (q.field !== undefined) body.error.field = q.field;
  return { status, body, internal };
}

/** A grpc-js status object for the callback / `call.emit('error')`: code, details, field trailer. */
export function grpcErrorOf(err: unknown): grpc.StatusObject & { internal: boolean } {
  const q = toQuireError(err);
  const metadata = new grpc.Metadata();
  metadata.set(CODE_TRAILER, q.code);
  if (q.field !== undefined) metadata.set(FIELD_TRAILER, q.field);
  const internal = q.code === Code.INTERNAL || q.code === Code.DATA_LOSS || q.code === Code.UNAVAILABLE;
  const details = q.code === Code.INTERNAL ? INTERNAL_MESSAGE : q.message;
  return { code: grpcStatusOf(q.code) as grpc.status, details, metadata, internal };
}

/**
 * The `fail(method, err)` of a grpc-js server: the status to give the callback (or
 * `call.emit('error')`), after passing the errors that are ours (INTERNAL, DATA_LOSS,
 * UNAVAILABLE) to `onError` for the log.
 */
export function grpcFailure(onError?: (err: unknown, method: string) => void): (method: string, err: unknown) => grpc.StatusObject {
  return (method, err) => {
    const status = grpcErrorOf(err);
    if (status.internal) onError?.(err, method);
    return { code: status.code, details: status.details, metadata: status.metadata };
  };
}
