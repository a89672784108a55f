/**
 * The consume side of the change hints (ADR 0009): one `WatchChanges` stream to each
 * publish replica, and on every hint a wake-up of the topic cache's change-feed read
 * (`TopicCache.pollNow`, coalesced there). The hint is only a wake-up: a hint lost while a
 * stream is down costs at most one change-poll period (QUIRE_CHANGE_POLL_MS), since the
 * cache still reads the change feed on its timer.
 *
 * Endpoints: `host:port` entries (comma-separated in QUIRE_PUBLISH_HINT_ENDPOINTS); a host
 * name that resolves to several addresses (a headless Service of the publish replicas)
 * gets one stream per address, re-resolved every `resolveEveryMs`, so replicas that come
 * and go are followed. Each stream reconnects after an error or an end with core's
 * jittered exponential backoff, and starts again from the first delay once it has
 * received its first message (the "connected" hint, which also wakes a change-feed read
 * for what was missed while down).
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { backoffDelay, type BackoffOptions } from '@quire/core';
import { loadQuireProto } from '@quire/proto';
import type { ChangeHintServiceClient, PbChangeHintOutput } from '@quire/proto';

export interface HintWatchOptions {
  /** `host:port` entries (a host may resolve to several addresses). */
  endpoints: readonly string[];
  /** API token sent as `authorization: Bearer` (needed when the publish service runs with QUIRE_AUTH=on). */
  token?: string;
  /** This consume replica's name, for the publish service's logs. */
  watcher: string;
  /** A hint arrived: `topic` is '' for the "connected" hint of a (re)opened stream. */
  onHint(hint: { topic: string; at: number; replica: string; address: string }): void;
  /** A stream failed (reported once per outage of an address, not on every retry). */
  onError?(err: unknown, what: string): void;
  /** A stream opened (first message) or closed. */
  onState?(address: string, connected: boolean): void;
  /** Reconnect delays (default 200 ms doubling to 10 s, equal jitter). */
  backoff?: BackoffOptions;
  /** Host names are re-resolved this often (default 30000 ms). */
  resolveEveryMs?: number;
}

/** `a:1, b:2` → entries; throws naming the bad entry. */
export function parseHintEndpoints(value: string): Array<{ host: string; port: number }> {
  const out: Array<{ host: string; port: number }> = [];
  for (const raw of value.split(',')) {
    const e = raw.trim().replace(/^dns:(\/\/\/)?/, '');
    if (e === '') continue;
    const m = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(e);
    if (m === null || Number(m[2]) > 65535) throw new Error(`${JSON.stringify(raw.trim())} is not host:port`);
    out.push({ host: m[1] as string, port: Number(m[2]) });
  }
  return out;
}

function addressOf(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

type HintClient = ChangeHintServiceClient;

/** One stream to one address, reconnecting until stopped. */
class HintStream {
  readonly address: string;
  connected = false;
  readonly #options: HintWatchOptions;
  readonly #client: HintClient;
  readonly #onHint: (hint: PbChangeHintOutput) => void;
  #call: grpc.ClientReadableStream<PbChangeHintOutput> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #stopped = false;
  #failing = false;

  constructor(address: string, options: HintWatchOptions, onHint: (hint: PbChangeHintOutput) => void) {
    this.address = address;
    this.#options = options;
    this.#onHint = onHint;
    const Ctor = loadQuireProto().quire.v1.ChangeHintService;
    this.#client = new Ctor(address, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 10_000,
      // A dead peer (no FIN) is noticed within ~40 s instead of the OS's hours.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 0,
    }) as unknown as HintClient;
  }

  start(): void {
    if (this.#stopped) return;
    const md = new grpc.Metadata();
    if (this.#options.token !== undefined) md.set('authorization', `Bearer ${this.#options.token}`);
    const call = this.#client.WatchChanges({ watcher: this.#options.watcher }, md);
    this.#call = call;
    let closed = false;
    const close = (err?: unknown): void => {
      if (closed) return;
      closed = true;
      if (this.connected) {
        this.connected = false;
        this.#options.onState?.(this.address, false);
      }
      if (this.#stopped) return;
      if (err !== undefined && !this.#failing) {
        this.#failing = true;
        this.#options.onError?.(err, `change hints from ${this.address} (retrying with backoff; the change feed still polls)`);
      }
      const delay = backoffDelay(this.#attempt++, { baseMs: 200, maxMs: 10_000, ...this.#options.backoff });
      this.#timer = setTimeout(() => this.start(), delay);
      this.#timer.unref();
    };
    call.on('data', (hint: PbChangeHintOutput) => {
      if (!this.connected) {
        this.connected = true;
        this.#attempt = 0;
        this.#failing = false;
        this.#options.onState?.(this.address, true);
      }
      this.#onHint(hint);
    });
    call.on('error', (err: grpc.ServiceError) => close(err.code === grpc.status.CANCELLED && this.#stopped ? undefined : err));
    call.on('end', () => close());
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#call?.cancel();
    this.#client.close();
    if (this.connected) {
      this.connected = false;
      this.#options.onState?.(this.address, false);
    }
  }
}

/** Streams to every publish replica the endpoints name. */
export class HintWatch {
  readonly #options: HintWatchOptions;
  readonly #endpoints: Array<{ host: string; port: number }>;
  readonly #streams = new Map<string, HintStream>();
  #resolveTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Hints received (the "connected" ones included). */
  received = 0;

  constructor(options: HintWatchOptions) {
    this.#options = options;
    this.#endpoints = options.endpoints.flatMap((e) => parseHintEndpoints(e));
  }

  /** Streams open now. */
  get connected(): number {
    let n = 0;
    for (const s of this.#streams.values()) if (s.connected) n++;
    return n;
  }

  /** Addresses streamed to (resolved). */
  get addresses(): string[] {
    return [...this.#streams.keys()];
  }

  /** Resolve the endpoints and open the streams (does not wait for them to connect). */
  async start(): Promise<void> {
    await this.#resolve();
    this.#scheduleResolve();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#resolveTimer);
    for (const s of this.#streams.values()) s.stop();
    this.#streams.clear();
  }

  async #resolve(): Promise<void> {
    const wanted = new Set<string>();
    for (const { host, port } of this.#endpoints) {
      if (isIP(host) !== 0) {
        wanted.add(addressOf(host, port));
        continue;
      }
      try {
        for (const a of await lookup(host, { all: true })) wanted.add(addressOf(a.address, port));
      } catch (err) {
        // Not resolvable now: keep the streams we have for it, try again next round.
        this.#options.onError?.(err, `change hints: resolving ${host}`);
        for (const addr of this.#streams.keys()) if (addr.endsWith(`:${port}`)) wanted.add(addr);
      }
    }
    if (this.#stopped) return;
    for (const [addr, s] of this.#streams) {
      if (!wanted.has(addr)) {
        s.stop();
        this.#streams.delete(addr);
      }
    }
    for (const addr of wanted) {
      if (this.#streams.has(addr)) continue;
      const s = new HintStream(addr, this.#options, (h) => {
        this.received++;
        this.#options.onHint({ topic: h.topic, at: Number(h.at), replica: h.replica, address: addr });
      });
      this.#streams.set(addr, s);
      s.start();
    }
  }

  #scheduleResolve(): void {
    if (this.#stopped || this.#endpoints.every((e) => isIP(e.host) !== 0)) return;
    this.#resolveTimer = setTimeout(() => {
      void this.#resolve().finally(() => this.#scheduleResolve());
    }, this.#options.resolveEveryMs ?? 30_000);
    this.#resolveTimer.unref();
  }
}
