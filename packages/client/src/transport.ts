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

/** What `onCall` gets: something to cancel. */
export interface Cancellable {
  cancel(): void;
}

type DuplexMethod = (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, unknown>;

/**
 * Polls one after another on one bidirectional stream per client (`PollStream`): each
 * request is answered by one message, with no new call (headers, trailers) per poll. A
 * stream that fails, ends (the service drains) or times out is dropped, and the next
 * request opens a new one; its error is the call's, as for a unary call.
 */
export class StreamCaller {
  readonly #method: string;
  readonly #streams = new Map<grpc.Client, grpc.ClientDuplexStream<unknown, unknown>>();

  constructor(method: string) {
    this.#method = method;
  }

  /** Cancel every open stream (the consumer closes). */
  close(): void {
    for (const s of this.#streams.values()) s.cancel();
    this.#streams.clear();
  }

  /** One request on `client`'s stream (opened when needed); rejects with a QuireError. */
  call<Res>(client: grpc.Client, req: unknown, options: { timeoutMs: number; onCall?: (call: Cancellable) => void }): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      let stream = this.#streams.get(client);
      if (stream === undefined) {
        const fn = (client as unknown as Record<string, DuplexMethod | undefined>)[this.#method];
        if (fn === undefined) return reject(new QuireError('INTERNAL', `no gRPC method ${this.#method}`));
        stream = fn.call(client, new grpc.Metadata());
        const opened = stream;
        this.#streams.set(client, opened);
        const drop = (): void => {
          if (this.#streams.get(client) === opened) this.#streams.delete(client);
        };
        opened.on('error', drop);
        opened.on('end', drop);
        opened.on('close', drop);
      }
      const s = stream;
      let settled = false;
      const done = (): void => {
        settled = true;
        clearTimeout(timer);
        s.off('data', onData);
        s.off('error', onError);
        s.off('end', onEnd);
      };
      const onData = (res: unknown): void => {
        if (settled) return;
        done();
        resolve(res as Res);
      };
      const onError = (err: unknown): void => {
        if (settled) return;
        done();
        reject(fromGrpcError(err));
      };
      const onEnd = (): void => {
        if (settled) return;
        done();
        reject(new QuireError(Code.UNAVAILABLE, 'the poll stream ended before its answer (the service is draining)'));
      };
      const timer = setTimeout(() => {
        if (settled) return;
        done();
        this.#streams.delete(client);
        s.cancel();
        reject(new QuireError(Code.DEADLINE_EXCEEDED, `no answer on the poll stream within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      s.on('data', onData);
      s.on('error', onError);
      s.on('end', onEnd);
      options.onCall?.({
        cancel: () => {
          this.#streams.delete(client);
          s.cancel();
        },
      });
      s.write(req);
    });
  }
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
