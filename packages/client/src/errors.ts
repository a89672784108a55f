/**
 * The client's one translation of transport failures into `QuireError` (code from the gRPC
 * status, field from the `x-quire-field` trailer), and the explicit set of codes a call
 * may be retried on. Retry decisions look at codes only, never at message text.
 */
import * as grpc from '@grpc/grpc-js';
import { Code, QuireError, codeFromGrpcStatus } from '@quire/core';

/** gRPC trailer naming the request field an error is about (set by both services). */
export const FIELD_TRAILER = 'x-quire-field';

/**
 * Codes worth another attempt, on the same or another endpoint:
 * - UNAVAILABLE: the server could not be reached, or is shutting down / overloaded;
 * - DEADLINE_EXCEEDED: no answer in time (our calls are idempotent: publishes carry a publishId).
 * Deliberately not retried:
 * - RESOURCE_EXHAUSTED: the services use it for a request over a limit (too many
 *   subscriptions, a body too large), which fails the same way again; a server shedding
 *   load should answer UNAVAILABLE;
 * - ABORTED: a compare-and-set lost to another writer; the caller must re-read the state (a
 *   blind retry could undo an operator's action).
 */
export const RETRYABLE_CODES: ReadonlySet<Code> = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED]);

export function isRetryable(err: unknown): boolean {
  return err instanceof QuireError && RETRYABLE_CODES.has(err.code);
}

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === 'number' && 'metadata' in err;
}

/** Anything a gRPC call failed with → QuireError (a QuireError passes through). */
export function fromGrpcError(err: unknown): QuireError {
  if (err instanceof QuireError) return err;
  if (isServiceError(err)) {
    const fieldValue = err.metadata?.get(FIELD_TRAILER)[0];
    const field = typeof fieldValue === 'string' && fieldValue !== '' ? fieldValue : undefined;
    const message = err.details !== undefined && err.details !== '' ? err.details : err.message;
    return new QuireError(codeFromGrpcStatus(err.code), message, field === undefined ? { cause: err } : { field, cause: err });
  }
  return QuireError.from(err);
}

// The backoff is core's, shared with the consume service's change-hint streams.
export { backoffDelay } from '@quire/core';
export type { BackoffOptions } from '@quire/core';

/** `ms` ±`ratio` (default 10%), at least 0. */
export function jitter(ms: number, ratio = 0.1): number {
  return Math.max(0, Math.round(ms * (1 + (Math.random() * 2 - 1) * ratio)));
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
