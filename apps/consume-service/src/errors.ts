/**
 * The transport edge's one error mapping, mirroring the publish service's `errors.ts`
 * (same body `{ error: { code, message, field } }`, same gRPC trailers): anything thrown
 * becomes a `QuireError`, then an HTTP status (`httpErrorOf`) or a gRPC status
 * (`grpcErrorOf`) through `@quire/core`'s `httpStatusOf` / `grpcStatusOf`.
 * TODO(shared): move this and the publish service's copy into one shared package.
 */
import * as grpc from '@grpc/grpc-js';
import { Code, QuireError, grpcStatusOf, httpStatusOf } from '@quire/core';

export interface ErrorBody {
  error: { code: Code; message: string; field?: string };
}

/** gRPC trailer naming the request field an error is about (same name as the publish service's). */
export const FIELD_TRAILER = 'x-quire-field';
/** gRPC trailer carrying the Quire code name. */
export const CODE_TRAILER = 'x-quire-code';

const INTERNAL_MESSAGE = 'internal error';

/** Fastify's own errors, by `code`. */
const FASTIFY_ERRORS: Record<string, { code: Code; status: number; field?: string; message?: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: Code.INVALID_ARGUMENT, status: 400, field: 'body', message: 'body: malformed JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: Code.INVALID_ARGUMENT, status: 400, field: 'body', message: 'body: is empty' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: Code.INVALID_ARGUMENT, status: 415, field: 'content-type' },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: Code.RESOURCE_EXHAUSTED, status: 413, field: 'body' },
  FST_ERR_NOT_FOUND: { code: Code.NOT_FOUND, status: 404 },
};

const HTTP_OVERRIDES = new WeakMap<QuireError, number>();

interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  validation?: Array<{ instancePath?: string; params?: Record<string, unknown>; message?: string }>;
  validationContext?: string;
}

export function toQuireError(err: unknown): QuireError {
  if (err instanceof QuireError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyLikeError;
  if (Array.isArray(e.validation)) {
    const first = e.validation[0];
    const path = (first?.instancePath ?? '')
      .split('/')
      .filter((s) => s !== '')
      .map((s) => (/^[0-9]+$/.test(s) ? `[${s}]` : `.${s}`))
      .join('');
    const extra = first?.params?.missingProperty ?? first?.params?.additionalProperty;
    const field = (typeof extra === 'string' ? `${path}.${extra}` : path).replace(/^\./, '') || (e.validationContext === 'querystring' ? 'query' : (e.validationContext ?? 'body'));
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
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const q = new QuireError(e.statusCode === 404 ? Code.NOT_FOUND : Code.INVALID_ARGUMENT, String(e.message), { cause: err });
    HTTP_OVERRIDES.set(q, e.statusCode);
    return q;
  }
  return new QuireError(Code.INTERNAL, INTERNAL_MESSAGE, { cause: err });
}

export function httpErrorOf(err: unknown): { status: number; body: ErrorBody; internal: boolean } {
  const q = toQuireError(err);
  const status = HTTP_OVERRIDES.get(q) ?? httpStatusOf(q.code);
  const message = q.code === Code.INTERNAL ? INTERNAL_MESSAGE : q.message;
  const body: ErrorBody = { error: { code: q.code, message } };
  if (q.field !== undefined) body.error.field = q.field;
  return { status, body, internal: status >= 500 };
}

export function grpcErrorOf(err: unknown): grpc.StatusObject & { internal: boolean } {
  const q = toQuireError(err);
  const metadata = new grpc.Metadata();
  metadata.set(CODE_TRAILER, q.code);
  if (q.field !== undefined) metadata.set(FIELD_TRAILER, q.field);
  const internal = q.code === Code.INTERNAL || q.code === Code.DATA_LOSS || q.code === Code.UNAVAILABLE;
  const details = q.code === Code.INTERNAL ? INTERNAL_MESSAGE : q.message;
  return { code: grpcStatusOf(q.code) as grpc.status, details, metadata, internal };
}
