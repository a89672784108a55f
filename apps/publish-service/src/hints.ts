/**
 * Change hints (`quire.v1.ChangeHintService/WatchChanges`, ADR 0009): the consume services
 * hold a stream to each publish replica and, on a hint, read the store's change feed at
 * once instead of at their next change poll.
 *
 * Where hints come from: one place, the store this replica writes through. `hintingStore`
 * wraps the `MetadataStore` the service layer, the rollouts and the scheduler use, and
 * after each write that records a change in the change feed (`CHANGE_WRITES`) succeeds,
 * hints that write's topic. So every path that changes what consumers see (publish,
 * release, pin, unpin, rollback, a rollout stage, delete, retention, topic settings) hints
 * without the service code knowing, and a path added later hints too if it writes
 * through the store. A hint is only a wake-up: correctness stays with the change feed.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { authorize } from '@quire/core';
import type { Clock, MetadataStore } from '@quire/core';
import { loadQuireProto } from '@quire/proto';
import type { ChangeHintServiceHandlers, PbChangeHint } from '@quire/proto';
import { ensureDeploymentToken, grpcPrincipal, guardGrpcHandlers, mintTokenString, type AccessGuard } from '@quire/service-kit';

export interface Hint {
  topic: string;
  at: number;
}

/** The store writes that record a change for a topic, and where each finds the topic in its arguments. */
export const CHANGE_WRITES: Readonly<Record<string, (args: readonly unknown[]) => unknown>> = {
  createTopic: (a) => (a[0] as { name?: unknown } | undefined)?.name,
  updateTopic: (a) => (a[0] as { name?: unknown } | undefined)?.name,
  commitVersion: (a) => (a[0] as { topic?: unknown } | undefined)?.topic,
  markVersionDeleted: (a) => a[0],
  putRelease: (a) => (a[0] as { topic?: unknown } | undefined)?.topic,
  withdrawRelease: (a) => a[0],
  putPin: (a) => (a[0] as { topic?: unknown } | undefined)?.topic,
  removePin: (a) => a[0],
};

/** The topic a store call changes, when it is one of the change-recording writes. */
export function changedTopic(method: string, args: readonly unknown[]): string | undefined {
  const pick = CHANGE_WRITES[method];
  if (pick === undefined) return undefined;
  const topic = pick(args);
  return typeof topic === 'string' && topic !== '' ? topic : undefined;
}

/** The hints of one publish replica: who watches, and `notify` to send one to all of them. */
export class ChangeHints {
  readonly replica: string;
  readonly #clock: Clock;
  readonly #watchers = new Set<(hint: Hint) => void>();
  #closed = false;
  readonly #onClose = new Set<() => void>();
  /** Hints sent (per watcher), for the metrics. */
  sent = 0;

  constructor(replica: string, clock: Clock = { now: () => Date.now() }) {
    this.replica = replica;
    this.#clock = clock;
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  /** Send `topic`'s hint to every watcher (synchronously queued on their streams). */
  notify(topic: string): void {
    if (this.#closed) return;
    const hint = { topic, at: this.#clock.now() };
    this.sent += this.#watchers.size;
    for (const w of this.#watchers) w(hint);
  }

  /** Watch hints until the returned function is called; `onClose` is called when the replica stops. */
  watch(fn: (hint: Hint) => void, onClose: () => void): () => void {
    this.#watchers.add(fn);
    this.#onClose.add(onClose);
    return () => {
      this.#watchers.delete(fn);
      this.#onClose.delete(onClose);
    };
  }

  /** The replica is stopping: end every stream (the watchers reconnect elsewhere or later). */
  close(): void {
    this.#closed = true;
    const ends = [...this.#onClose];
    this.#watchers.clear();
    this.#onClose.clear();
    for (const end of ends) end();
  }
}

/** `store` whose change-recording writes hint their topic once they succeed (everything else passes through). */
export function hintingStore(store: MetadataStore, hints: ChangeHints): MetadataStore {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(obj, prop) {
      const value: unknown = Reflect.get(obj, prop, obj);
      if (typeof value !== 'function' || typeof prop !== 'string' || CHANGE_WRITES[prop] === undefined) return value;
      let fn = wrapped.get(prop);
      if (fn === undefined) {
        const original = value as (...args: unknown[]) => Promise<unknown>;
        fn = async (...args: unknown[]): Promise<unknown> => {
          const result = await original.apply(obj, args);
          const topic = changedTopic(prop, args);
          if (topic !== undefined) hints.notify(topic);
          return result;
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}

/**
 * `quire.v1.ChangeHintService` on the publish replica's gRPC server, guarded: any valid
 * token may watch, and a watcher gets only the hints of topics its token may read.
 */
export function addChangeHintService(server: grpc.Server, hints: ChangeHints, guard: AccessGuard, onWatch?: (event: 'open' | 'close', watcher: string) => void): void {
  const definition = loadQuireProto().quire.v1.ChangeHintService.service;
  const handlers: ChangeHintServiceHandlers = {
    WatchChanges: (call) => {
      const who = grpcPrincipal(call);
      const mayRead = who === undefined ? () => true : (topic: string) => authorize(who.principal, { action: 'read', topic }).allowed;
      const watcher = call.request.watcher || 'unnamed';
      const toPb = (h: Hint): PbChangeHint => ({ topic: h.topic, at: String(h.at), replica: hints.replica });
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        off();
        onWatch?.('close', watcher);
      };
      const off = hints.watch(
        (h) => {
          if (mayRead(h.topic)) call.write(toPb(h));
        },
        () => {
          finish();
          call.end();
        },
      );
      call.on('cancelled', finish);
      call.on('error', finish);
      call.on('close', finish);
      onWatch?.('open', watcher);
      // Connected: the watcher reads the change feed now, for what it missed meanwhile.
      call.write({ topic: '', at: String(Date.now()), replica: hints.replica });
    },
  };
  // `WatchChanges` asks for nothing of a topic: authenticated is enough (the stream is narrowed above).
  server.addService(definition, guardGrpcHandlers(definition, handlers, guard, { WatchChanges: () => [] }, 'quire.v1.ChangeHintService'));
}

/**
 * A single-machine deployment's change-hint token (the quickstart): kept in `file` (mode
 * 0600; minted on the first start) and registered once as a read-only viewer token, so
 * restarts reuse it instead of piling up tokens. Returns the token string.
 */
export async function localHintToken(store: MetadataStore, file: string): Promise<string> {
  let token = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (token === '') {
    token = mintTokenString();
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
  }
  await ensureDeploymentToken(store, token, 'quickstart', { name: 'consume-hints', role: 'viewer' }, file);
  return token;
}
