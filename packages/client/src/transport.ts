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
 * One open `PollStream` and its one request in flight. Its listeners, its cancel handle and
 * its timeout callback are made once per stream, not once per request: a long-poll consumer
 * sends one request per answer, and the per-request closures, listener (de)registrations
 * and promise plumbing showed in the profile of a process running 500 consumers.
 */
class OpenStream {
  readonly stream: grpc.ClientDuplexStream<unknown, unknown>;
  /** The request in flight: how to settle it, and its deadline's timer. */
  #resolve: ((res: unknown) => void) | undefined;
  #reject: ((err: QuireError) => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timeoutMs = 0;
  /** Given to `onCall`: cancels the stream (the request in flight fails CANCELLED). */
  readonly handle: Cancellable;
  readonly #onTimeout: () => void;

  constructor(stream: grpc.ClientDuplexStream<unknown, unknown>, drop: () => void) {
    this.stream = stream;
    this.handle = {
      cancel: () => {
        drop();
        stream.cancel();
      },
    };
    this.#onTimeout = () => {
      this.#timer = undefined;
      const ms = this.#timeoutMs;
      drop();
      const reject = this.#settleReject();
      stream.cancel();
      reject?.(new QuireError(Code.DEADLINE_EXCEEDED, `no answer on the poll stream within ${ms} ms`));
    };
    stream.on('data', (res: unknown) => this.#settle()?.(res));
    stream.on('error', (err: unknown) => {
      drop();
      this.#settleReject()?.(fromGrpcError(err));
    });
    stream.on('end', () => {
      drop();
      this.#settleReject()?.(new QuireError(Code.UNAVAILABLE, 'the poll stream ended before its answer (the service is draining)'));
    });
    stream.on('close', drop);
  }

  /** The request about to be sent is the one in flight (the caller sends one at a time). */
  expect(timeoutMs: number, resolve: (res: unknown) => void, reject: (err: QuireError) => void): void {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#timeoutMs = timeoutMs;
    this.#timer = setTimeout(this.#onTimeout, timeoutMs);
  }

  /** Ends the request in flight (if any); returns its resolve. */
  #settle(): ((res: unknown) => void) | undefined {
    const resolve = this.#resolve;
    this.#resolve = undefined;
    this.#reject = undefined;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    return resolve;
  }

  /** Ends the request in flight (if any); returns its reject. */
  #settleReject(): ((err: QuireError) => void) | undefined {
    const reject = this.#reject;
    this.#settle();
    return reject;
  }
}

/**
 * Polls one after another on one bidirectional stream per client (`PollStream`): each
 * request is answered by one message, with no new call (headers, trailers) per poll. A
 * stream that fails, ends (the service drains) or times out is dropped, and the next
 * request opens a new one; its error is the call's, as for a unary call. One request at a
 * time per client (the consumer's poll loop); an answer with no request in flight is ignored.
 */
export class StreamCaller {
  readonly #method: string;
  readonly #streams = new Map<grpc.Client, OpenStream>();

  constructor(method: string) {
    this.#method = method;
  }

  /** Cancel every open stream (the consumer closes). */
  close(): void {
    for (const s of this.#streams.values()) s.stream.cancel();
    this.#streams.clear();
  }

  /** One request on `client`'s stream (opened when needed); rejects with a QuireError. */
  call<Res>(client: grpc.Client, req: unknown, options: { timeoutMs: number; onCall?: (call: Cancellable) => void }): Promise<Res> {
    let open = this.#streams.get(client);
    if (open === undefined) {
      const fn = (client as unknown as Record<string, DuplexMethod | undefined>)[this.#method];
      if (fn === undefined) return Promise.reject(new QuireError('INTERNAL', `no gRPC method ${this.#method}`));
      const opened: OpenStream = new OpenStream(fn.call(client, new grpc.Metadata()), () => {
        if (this.#streams.get(client) === opened) this.#streams.delete(client);
      });
      this.#streams.set(client, opened);
      open = opened;
    }
    const s = open;
    return new Promise<Res>((resolve, reject) => {
      s.expect(options.timeoutMs, resolve as (res: unknown) => void, reject);
      options.onCall?.(s.handle);
      s.stream.write(req);
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
