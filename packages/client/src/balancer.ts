/**
 * Client-side load balancing with health checks over several consume endpoints.
 *
 * `endpoints` is a list of `host:port` (or one `dns:host:port` / a host name that resolves
 * to several addresses). Each address gets its own channel (grpc-js reconnects it with its
 * own jittered backoff); every `intervalMs` (±20%) each is asked `grpc.health.v1.Health/Check`
 * for `quire.v1.ConsumeService`. `pick()` takes the healthy ones round-robin; when none is
 * healthy it takes every address in turn (a failed check must never stop a consumer from
 * trying). Host names are re-resolved on each round, so a scaled DNS name is followed.
 *
 * Why not grpc-js's `round_robin` policy alone: grpc-js 1.14 has no client health checking
 * (`healthCheckConfig` is not implemented), so its picker keeps sending to a server that
 * answers NOT_SERVING while it drains; and its channel cannot be asked which address a
 * call went to, which retries on "another endpoint" need. The health protocol itself comes
 * from `grpc-health-check` (the grpc-node project's own package).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { QuireError } from '@quire/core';
import { jitter } from './errors.ts';

/** What the retry loop needs from a set of clients. */
export interface ClientPool<C> {
  pick(): C;
  readonly size: number;
  close(): void;
  /** A call on `client` failed UNAVAILABLE (a pool with health checks skips it until the next one). */
  markFailed?(client: C): void;
}

/** Health of one address as the last check saw it. */
export type EndpointHealth = 'unknown' | 'serving' | 'not-serving';

export interface HealthCheckOptions {
  /** Service name asked (default `quire.v1.ConsumeService`). */
  service?: string;
  /** Between check rounds, jittered ±20% (default 5000 ms; 0 = no health checks). */
  intervalMs?: number;
  /** Deadline of one Check (default 2000 ms). */
  timeoutMs?: number;
}

interface Backend<C> {
  address: string;
  client: C;
  health: grpc.Client;
  state: EndpointHealth;
}

type HealthClient = grpc.Client & {
  Check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string | number }) => void): void;
};
const HealthCtor = grpc.makeGenericClientConstructor(healthService, 'Health') as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => HealthClient;

/** Channel options every consume channel uses: grpc-js's reconnect backoff is jittered (±20%) already. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 10_000,
  // channelz (grpc-js's per-call introspection counters and traces) costs on every call; Quire does not read it.
  'grpc.enable_channelz': 0,
};

/** `host:port` → host and port; `dns:` prefixes (and `dns:///`) are accepted. */
export function parseEndpoint(endpoint: string, field: string): { host: string; port: number } {
  const e = endpoint.trim().replace(/^dns:(\/\/\/)?/, '');
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(e);
  if (m === null || Number(m[2]) > 65535) throw QuireError.invalid(field, `must be host:port, got ${JSON.stringify(endpoint)}`);
  return { host: m[1] as string, port: Number(m[2]) };
}

function addressOf(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The next index in `[0, n)` after `last` among the allowed ones (round-robin), or -1. */
export function nextRoundRobin(n: number, last: number, allowed: (i: number) => boolean): number {
  for (let step = 1; step <= n; step++) {
    const i = (last + step) % n;
    if (allowed(i)) return i;
  }
  return -1;
}

export class HealthCheckedPool<C extends grpc.Client> implements ClientPool<C> {
  readonly #endpoints: { host: string; port: number }[];
  readonly #make: (address: string) => C;
  readonly #service: string;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  #backends: Backend<C>[] = [];
  #last = -1;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Called when an address changes health (for events / logs). */
  onHealthChange: ((address: string, state: EndpointHealth) => void) | undefined;

  constructor(endpoints: readonly string[], make: (address: string) => C, options: HealthCheckOptions = {}) {
    if (!Array.isArray(endpoints) || endpoints.length === 0) throw QuireError.invalid('endpoints', 'list at least one host:port');
    this.#endpoints = endpoints.map((e, i) => {
      if (typeof e !== 'string') throw QuireError.invalid(`endpoints[${i}]`, 'must be host:port');
      return parseEndpoint(e, `endpoints[${i}]`);
    });
    this.#make = make;
    this.#service = options.service ?? 'quire.v1.ConsumeService';
    this.#intervalMs = options.intervalMs ?? 5000;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    if (!Number.isFinite(this.#intervalMs) || this.#intervalMs < 0) throw QuireError.invalid('healthCheck.intervalMs', 'must be a number of ms ≥ 0');
    // Until the first resolution, every endpoint as given (IP literals need none).
    this.#setAddresses(this.#endpoints.map((e) => addressOf(e.host, e.port)));
    this.#schedule(0);
  }

  get size(): number {
    return this.#backends.length;
  }

  /** Each address with the health its last check saw. */
  health(): { address: string; state: EndpointHealth }[] {
    return this.#backends.map((b) => ({ address: b.address, state: b.state }));
  }

  pick(): C {
    const n = this.#backends.length;
    let i = nextRoundRobin(n, this.#last, (k) => this.#backends[k]?.state === 'serving');
    if (i < 0) i = nextRoundRobin(n, this.#last, (k) => this.#backends[k]?.state !== 'not-serving');
    if (i < 0) i = nextRoundRobin(n, this.#last, () => true);
    this.#last = i;
    return (this.#backends[i] as Backend<C>).client;
  }

  /** Mark the address of `client` as failing at once (a call to it failed with UNAVAILABLE). */
  markFailed(client: C): void {
    const b = this.#backends.find((x) => x.client === client);
    if (b !== undefined && this.#intervalMs > 0) this.#set(b, 'not-serving');
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const b of this.#backends) {
      b.client.close();
      b.health.close();
    }
    this.#backends = [];
  }

  #set(b: Backend<C>, state: EndpointHealth): void {
    if (b.state === state) return;
    b.state = state;
    this.onHealthChange?.(b.address, state);
  }

  #setAddresses(addresses: string[]): void {
    const keep = new Map(this.#backends.map((b) => [b.address, b]));
    const next: Backend<C>[] = [];
    for (const address of [...new Set(addresses)]) {
      const existing = keep.get(address);
      if (existing !== undefined) {
        next.push(existing);
        keep.delete(address);
        continue;
      }
      next.push({
        address,
        client: this.#make(address),
        health: new HealthCtor(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS),
        state: 'unknown',
      });
    }
    for (const gone of keep.values()) {
      gone.client.close();
      gone.health.close();
    }
    this.#backends = next;
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#intervalMs === 0) return;
    this.#timer = setTimeout(() => void this.#round(), ms);
    this.#timer.unref();
  }

  async #resolve(): Promise<void> {
    const lists = await Promise.all(
      this.#endpoints.map(async (e) => {
        if (isIP(e.host) !== 0) return [addressOf(e.host, e.port)];
        try {
          const found = await lookup(e.host, { all: true });
          return found.map((a) => addressOf(a.address, e.port));
        } catch {
          return [addressOf(e.host, e.port)];
        }
      }),
    );
    if (!this.#closed) this.#setAddresses(lists.flat());
  }

  async #round(): Promise<void> {
    await this.#resolve();
    await Promise.all(this.#backends.map((b) => this.#check(b)));
    this.#schedule(jitter(this.#intervalMs, 0.2));
  }

  #check(b: Backend<C>): Promise<void> {
    return new Promise((resolve) => {
      (b.health as HealthClient).Check({ service: this.#service }, { deadline: Date.now() + this.#timeoutMs }, (err, res) => {
        if (this.#closed) return resolve();
        // A service without the health protocol yet counts as serving when it answers at all.
        if (err !== null) this.#set(b, err.code === grpc.status.UNIMPLEMENTED ? 'serving' : 'not-serving');
        else this.#set(b, res?.status === 'SERVING' || res?.status === 1 ? 'serving' : 'not-serving');
        resolve();
      });
    });
  }
}
