/**
 * gRPC plumbing shared by the publisher and the consumer: insecure channels to several
 * endpoints picked round-robin, promise-returning unary calls with a deadline, and a retry
 * loop over `RETRYABLE_CODES` with exponential backoff + jitter that moves to the next
 * endpoint on each attempt.
 */
import * as grpc from '@grpc/grpc-js';
import { Code, QuireError } from '@quire/core';
import type { ClientPool } from './balancer.ts';
import { backoffDelay, fromGrpcError, isRetryable, sleep } from './errors.ts';

export interface RetryOptions {
  /** Attempts per call, the first included (default 4). */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

type UnaryMethod = (
  req: unknown,
  md: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;

export interface CallOptions {
  /** Deadline from now, ms (default 30 s). */
  timeoutMs?: number;
  metadata?: grpc.Metadata;
  /** Called with the in-flight call (to cancel it). */
  onCall?: (call: grpc.ClientUnaryCall) => void;
}

/** One unary call on one client; rejects with a QuireError. */
export function unary<Res>(client: grpc.Client, method: string, req: unknown, options: CallOptions = {}): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
    if (fn === undefined) return reject(new QuireError('INTERNAL', `no gRPC method ${method}`));
    const call = fn.call(
      client,
      req,
      options.metadata ?? new grpc.Metadata(),
      { deadline: Date.now() + (options.timeoutMs ?? 30_000) },
      (err, res) => (err ? reject(fromGrpcError(err)) : resolve(res as Res)),
    );
    options.onCall?.(call);
  });
}

/** Several endpoints, one client each, taken in turn (client-side round-robin). */
export class EndpointPool<C extends grpc.Client> implements ClientPool<C> {
  readonly #clients: C[];
  #next = 0;

  constructor(endpoints: readonly string[], make: (address: string) => C) {
    if (endpoints.length === 0) throw QuireError.invalid('endpoints', 'list at least one host:port');
    this.#clients = endpoints.map((e, i) => {
      if (typeof e !== 'string' || e.trim() === '') throw QuireError.invalid(`endpoints[${i}]`, 'must be host:port');
      return make(e.trim());
    });
  }

  get size(): number {
    return this.#clients.length;
  }

  /** The next client in turn. */
  pick(): C {
    const c = this.#clients[this.#next % this.#clients.length] as C;
    this.#next = (this.#next + 1) % this.#clients.length;
    return c;
  }

  close(): void {
    for (const c of this.#clients) c.close();
  }
}

/** Run `attempt` with a client from the pool; retry retryable failures on the next endpoint. */
export async function withRetry<C extends grpc.Client, T>(
  pool: ClientPool<C>,
  attempt: (client: C) => Promise<T>,
  options: RetryOptions = {},
  signal?: AbortSignal,
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 4);
  for (let i = 0; ; i++) {
    const client = pool.pick();
    try {
      return await attempt(client);
    } catch (err) {
      const q = fromGrpcError(err);
      // An endpoint that cannot be reached is skipped until its next health check says otherwise.
      if (q.code === Code.UNAVAILABLE) pool.markFailed?.(client);
      if (!isRetryable(q) || i + 1 >= attempts || signal?.aborted) throw q;
      await sleep(backoffDelay(i, { baseMs: options.baseDelayMs ?? 100, maxMs: options.maxDelayMs ?? 5000 }), signal);
    }
  }
}

/** int64 from proto-loader (a decimal string) → number. */
export function toNumber(v: string | number | null | undefined): number {
  if (v === null || v === undefined || v === '') return 0;
  return typeof v === 'number' ? v : Number(v);
}
