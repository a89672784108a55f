/**
 * The publisher: topic admin and publishing over the publish service's gRPC API.
 * Small in-memory payloads go in one `Publish` call; files, streams and large payloads go
 * through `PublishStream` in 1 MiB chunks, respecting the stream's backpressure and
 * reporting progress. Every publish carries a publishId (generated unless given), so a
 * retried call — ours after UNAVAILABLE / DEADLINE_EXCEEDED, or the caller's — commits
 * at most one version.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { tokenClientOptions } from './auth.ts';
import { publishEncryption, type KeyProvider } from './encryption.ts';
import { Code, QuireError } from '@quire/core';
import type { BlobLocation, Metadata, Page, Scope, TopicEncryption } from '@quire/core';
import { loadQuireProto } from '@quire/proto';
import type {
  ConsumeServiceClient,
  PbPublishChunk,
  PbPublishOptions,
  PbPublishResponseOutput,
  PbTopic,
  PbTopicOutput,
  PublishServiceClient,
} from '@quire/proto';
import { S3Downloader } from './download.ts';
import { fromGrpcError } from './errors.ts';
import { History, createConsumePool, type ListVersionsOptions } from './history.ts';
import {
  auditFromPb,
  pinFromPb,
  rolloutRunFromPb,
  topicFromPb,
  versionFromPb,
  type AuditEntryInfo,
  type PbAuditEntryOutput,
  type PbPinOutput,
  type PbRolloutRunOutput,
  type PinInfo,
  type RolloutPlanInfo,
  type RolloutRunInfo,
  type TopicInfo,
  type VersionInfo,
} from './mapping.ts';
import { EndpointPool, unary, withRetry, type RetryOptions } from './transport.ts';

/** Metadata key carrying the caller's identity to the publish service. */
export const ACTOR_METADATA = 'x-quire-actor';
export const CHUNK_BYTES = 1024 * 1024;

export interface PublisherOptions {
  /** `host:port` of the publish service's gRPC API. */
  endpoint: string;
  /** Who publishes (audit, version `publisher`); default `anonymous` on the server. */
  actor?: string;
  /** Default S3 regions to upload to (none = every configured region). */
  regions?: string[];
  /** In-memory payloads up to this size use one `Publish` call (default 1 MiB). */
  unaryMaxBytes?: number;
  /** Per-call deadline (default 60 s; streamed uploads: 10 min). */
  timeoutMs?: number;
  retry?: RetryOptions;
  /**
   * `host:port` of a consume service, for `getVersion` / `listVersions` (the publish
   * service's gRPC contract has no version reads).
   */
  consumeEndpoint?: string;
  /** API token (`quire tokens create`), sent as `authorization: Bearer …` on every call. */
  token?: string;
  /** Keys of encrypted topics (`createLocalKeyring(path)` or a KMS): payloads to them are encrypted before upload. */
  keyring?: KeyProvider;
}

export interface PublishProgress {
  /** Payload bytes handed to the transport so far. */
  sentBytes: number;
  /** Total size when known (data, file). */
  totalBytes?: number;
}

export interface PublishInput {
  data?: string | Uint8Array;
  /** Path of a file to publish. */
  file?: string;
  stream?: Readable;
  metadata?: Metadata;
  contentType?: string;
  /** Scopes to release to (none = global). */
  scopes?: Scope[];
  regions?: string[];
  /** Idempotency key (default: a fresh UUID per `publish` call). */
  publishId?: string;
  onProgress?: (p: PublishProgress) => void;
}

export interface RegisterInput {
  /** The objects holding the payload, one per region. */
  locations?: Array<Omit<BlobLocation, 'bucket'> & { bucket?: string }>;
  /** Or one key, in `regions` (default: the publisher's regions). */
  key?: string;
  regions?: string[];
  metadata?: Metadata;
  contentType?: string;
  scopes?: Scope[];
  publishId?: string;
  sha256?: string;
}

export interface TopicInput {
  name: string;
  owner?: string;
  description?: string;
  inlineThresholdBytes?: number;
  retention?: { keepLast?: number; maxAgeMs?: number };
  jsonSchema?: string;
  allowedApplications?: string[];
  /** Encrypt every payload (envelope encryption, AES-256-GCM) under this key id of the publishers' and consumers' keyrings. */
  encryption?: { algorithm?: 'aes-256-gcm'; keyId: string };
}

/** Operator controls of a rollout run (a reason is required for pause and abort). */
export type RolloutControl = 'pause' | 'resume' | 'advance' | 'abort';

export interface ListAuditOptions {
  topic?: string;
  actor?: string;
  /** e.g. `pin`, `rollback`, `rollout.start` */
  action?: string;
  /** Entries at or after this time (epoch ms). */
  since?: number;
  /** Entries before this time (epoch ms). */
  until?: number;
  limit?: number;
  cursor?: string;
}

export interface Publisher {
  publish(topic: string, input: PublishInput): Promise<VersionInfo>;
  register(topic: string, input: RegisterInput): Promise<VersionInfo>;
  createTopic(topic: TopicInput): Promise<TopicInfo>;
  getTopic(name: string): Promise<TopicInfo>;
  getVersion(topic: string, version: number): Promise<VersionInfo>;
  listVersions(topic: string, options?: ListVersionsOptions): Promise<Page<VersionInfo>>;
  /** Release an existing version (an old one too) to more scopes; none = global. */
  release(topic: string, version: number, scopes?: Scope[], reason?: string): Promise<void>;
  /** Pin the topic (or the consumers matching `scope`) to a version. A reason is required. */
  pin(topic: string, version: number, options: { scope?: Scope; reason: string }): Promise<PinInfo>;
  /** End the pin on exactly this scope (default global). Sent once (not retried). */
  unpin(topic: string, options?: { scope?: Scope; reason?: string }): Promise<PinInfo>;
  /**
   * Pin the last version fully rolled out before the current one (in `scope`, default
   * global). Sent once, never retried: a retry after a lost answer would roll back twice.
   */
  rollback(topic: string, options: { scope?: Scope; reason: string }): Promise<PinInfo>;
  /** Active pins, or every pin ever with `history`. */
  listPins(topic: string, options?: { history?: boolean }): Promise<PinInfo[]>;
  /**
   * Start a rollout run of `version` through `plan` (default: the topic's plan); stage 1 is
   * released at once. Sent once (a retry after a lost answer would find the run active).
   */
  startRollout(topic: string, version: number, plan?: RolloutPlanInfo): Promise<RolloutRunInfo>;
  /** Pause, resume, advance now or abort a run. Sent once (advance twice = two stages). */
  controlRollout(topic: string, runId: string, action: RolloutControl, reason?: string): Promise<RolloutRunInfo>;
  getRollout(topic: string, runId: string): Promise<RolloutRunInfo>;
  /** The topic's runs, newest first; running / paused ones only with `activeOnly`. */
  listRollouts(topic: string, options?: { activeOnly?: boolean }): Promise<RolloutRunInfo[]>;
  /** The audit log, newest first. */
  listAudit(options?: ListAuditOptions): Promise<Page<AuditEntryInfo>>;
  close(): void;
}

export function createPublisher(options: PublisherOptions): Publisher {
  const Ctor = loadQuireProto().quire.v1.PublishService;
  const max = 64 * 1024 * 1024;
  const pool = new EndpointPool<PublishServiceClient>([options.endpoint], (address) =>
    new Ctor(address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': max,
      'grpc.max_receive_message_length': max,
      ...tokenClientOptions(options.token),
    }),
  );
  let history: { pool: EndpointPool<ConsumeServiceClient>; reader: History } | undefined;
  const historyReader = (): History => {
    if (options.consumeEndpoint === undefined) {
      throw new QuireError(Code.FAILED_PRECONDITION, 'consumeEndpoint: version reads go to a consume service; set consumeEndpoint', { field: 'consumeEndpoint' });
    }
    if (history === undefined) {
      const hp = createConsumePool([options.consumeEndpoint], options.token);
      history = { pool: hp, reader: new History(hp, {}, new S3Downloader(), options.retry) };
    }
    return history.reader;
  };
  const unaryMax = options.unaryMaxBytes ?? CHUNK_BYTES;
  const timeoutMs = options.timeoutMs ?? 60_000;

  const metadata = (): grpc.Metadata => {
    const md = new grpc.Metadata();
    if (options.actor !== undefined && options.actor !== '') md.set(ACTOR_METADATA, options.actor);
    return md;
  };
  const call = <Res>(method: string, req: unknown): Promise<Res> =>
    withRetry(pool, (client) => unary<Res>(client, method, req, { timeoutMs, metadata: metadata() }), options.retry);
  /** For calls that must not run twice (rollback: each one goes one version further back). */
  const callOnce = <Res>(method: string, req: unknown): Promise<Res> => unary<Res>(pool.pick(), method, req, { timeoutMs, metadata: metadata() });
  const pbScope = (s: Scope | undefined) => ({ attributes: { ...(s ?? {}) } });

  const publishOptions = (topic: string, input: Omit<PublishInput, 'data' | 'file' | 'stream'>, publishId: string, extra: Partial<PbPublishOptions> = {}): PbPublishOptions => ({
    topic,
    metadata: input.metadata ?? {},
    contentType: input.contentType ?? '',
    scopes: (input.scopes ?? []).map((s) => ({ attributes: { ...s } })),
    regions: input.regions ?? options.regions ?? [],
    publishId,
    ...extra,
  });

  /**
   * Client streaming: the header, then the payload in CHUNK_BYTES pieces. A write that
   * fills grpc-js's buffer waits for `drain` (backpressure on the source); progress is
   * reported per piece handed over. An answer before the end (an error) stops reading.
   */
  async function publishStream(header: PbPublishOptions, open: () => Readable, total: number | undefined, onProgress?: (p: PublishProgress) => void): Promise<PbPublishResponseOutput> {
    const client = pool.pick();
    const source = open();
    return new Promise<PbPublishResponseOutput>((resolve, reject) => {
      let settled = false;
      let wakeWriter: () => void = () => {};
      const settle = (err: unknown, res?: PbPublishResponseOutput): void => {
        if (settled) return;
        settled = true;
        wakeWriter();
        if (err) {
          call.cancel();
          source.destroy();
          reject(fromGrpcError(err));
        } else resolve(res as PbPublishResponseOutput);
      };
      const call = client.PublishStream(metadata(), { deadline: Date.now() + Math.max(timeoutMs, 600_000) }, (err, res) =>
        settle(err ?? undefined, res as PbPublishResponseOutput),
      );
      call.on('error', () => {}); // reported through the callback
      call.write({ header } satisfies PbPublishChunk);
      let sent = 0;
      (async () => {
        for await (const piece of rechunk(source, CHUNK_BYTES)) {
          if (settled) return;
          const ok = call.write({ data: piece } satisfies PbPublishChunk);
          sent += piece.byteLength;
          onProgress?.(total === undefined ? { sentBytes: sent } : { sentBytes: sent, totalBytes: total });
          if (!ok) {
            await new Promise<void>((r) => {
              wakeWriter = r;
              call.once('drain', r);
            });
          }
        }
        if (!settled) call.end();
      })().catch((err: unknown) => {
        if (settled) return;
        settle(err instanceof QuireError ? err : QuireError.invalid('stream', `reading the payload failed: ${err instanceof Error ? err.message : String(err)}`));
      });
    });
  }


  const encrypt = publishEncryption(options.keyring, async (name) => (await call<{ encryption: TopicEncryption | null }>('GetTopic', { name })).encryption ?? undefined);

  return {
    async publish(topic, plainInput) {
      const sources = [plainInput.data, plainInput.file, plainInput.stream].filter((s) => s !== undefined).length;
      if (sources !== 1) throw QuireError.invalid('data', 'give exactly one of data, file or stream');
      const input = await encrypt(topic, plainInput);
      const publishId = input.publishId ?? randomUUID();
      if (input.data !== undefined) {
        const bytes = typeof input.data === 'string' ? Buffer.from(input.data, 'utf8') : Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const header = publishOptions(topic, input, publishId, { size: bytes.byteLength, sha256 });
        if (bytes.byteLength <= unaryMax) {
          const res = await call<PbPublishResponseOutput>('Publish', { options: header, data: bytes });
          input.onProgress?.({ sentBytes: bytes.byteLength, totalBytes: bytes.byteLength });
          return versionOf(res);
        }
        return versionOf(await retrying(() => publishStream(header, () => Readable.from([bytes]), bytes.byteLength, input.onProgress)));
      }
      if (input.file !== undefined) {
        const path = input.file;
        const size = await stat(path).then(
          (s) => s.size,
          (err: unknown) => {
            throw QuireError.invalid('file', `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
          },
        );
        const header = publishOptions(topic, input, publishId, { size });
        return versionOf(await retrying(() => publishStream(header, () => createReadStream(path, { highWaterMark: CHUNK_BYTES }), size, input.onProgress)));
      }
      // A caller's stream can be read once: no retry.
      const stream = input.stream as Readable;
      return versionOf(await publishStream(publishOptions(topic, input, publishId), () => stream, undefined, input.onProgress));
    },

    async register(topic, input) {
      let locations: Array<{ region: string; bucket: string; key: string }>;
      if (input.locations !== undefined) {
        if (input.key !== undefined) throw QuireError.invalid('key', 'give either locations or key, not both');
        locations = input.locations.map((l) => ({ region: l.region, bucket: l.bucket ?? '', key: l.key }));
      } else {
        if (input.key === undefined) throw QuireError.invalid('key', 'give locations or a key');
        const regions = input.regions ?? options.regions;
        if (regions === undefined || regions.length === 0) throw QuireError.invalid('regions', 'name the regions that hold the key');
        locations = regions.map((region) => ({ region, bucket: '', key: input.key as string }));
      }
      const req = {
        options: publishOptions(topic, { ...input, regions: [] }, input.publishId ?? randomUUID(), input.sha256 === undefined ? {} : { sha256: input.sha256 }),
        locations,
      };
      return versionOf(await call<PbPublishResponseOutput>('CommitUploaded', req));
    },

    async createTopic(t) {
      const topic: PbTopic = {
        name: t.name,
        owner: t.owner ?? '',
        description: t.description ?? '',
        inlineThresholdBytes: t.inlineThresholdBytes ?? 0,
        jsonSchema: t.jsonSchema ?? '',
        allowedApplications: t.allowedApplications ?? [],
        ...(t.retention === undefined ? {} : { retention: { keepLast: t.retention.keepLast ?? 0, maxAgeMs: t.retention.maxAgeMs ?? 0 } }),
        ...(t.encryption === undefined ? {} : { encryption: { algorithm: t.encryption.algorithm ?? 'aes-256-gcm', keyId: t.encryption.keyId } }),
      };
      return topicFromPb(await call<PbTopicOutput>('CreateTopic', { topic }));
    },

    async getTopic(name) {
      return topicFromPb(await call<PbTopicOutput>('GetTopic', { name }));
    },

    async getVersion(topic, version) {
      return historyReader().getVersion(topic, version);
    },

    async listVersions(topic, o) {
      return historyReader().listVersions(topic, o);
    },

    async release(topic, version, scopes = [], reason = '') {
      await call('Release', { topic, version, scopes: scopes.map(pbScope), reason });
    },

    async pin(topic, version, o) {
      const res = await call<{ pin: PbPinOutput | null }>('Pin', { topic, version, scope: pbScope(o.scope), reason: o.reason });
      return pinOf(res.pin);
    },

    async unpin(topic, o = {}) {
      const res = await callOnce<{ pin: PbPinOutput | null }>('Unpin', { topic, scope: pbScope(o.scope), reason: o.reason ?? '' });
      return pinOf(res.pin);
    },

    async rollback(topic, o) {
      const res = await callOnce<{ pin: PbPinOutput | null }>('Rollback', { topic, scope: pbScope(o.scope), reason: o.reason });
      return pinOf(res.pin);
    },

    async listPins(topic, o = {}) {
      const res = await call<{ pins: PbPinOutput[] }>('ListPins', { topic, includeHistory: o.history ?? false });
      return res.pins.map(pinFromPb);
    },

    async startRollout(topic, version, plan) {
      const pbPlan =
        plan === undefined
          ? null
          : {
              stages: plan.stages.map((st) => ({ name: st.name ?? '', scope: pbScope(st.scope), bakeMs: st.bakeMs })),
              ...(plan.health === undefined ? {} : { health: { ...plan.health } }),
            };
      return rolloutRunFromPb(await callOnce<PbRolloutRunOutput>('StartRollout', { topic, version, plan: pbPlan }));
    },

    async controlRollout(topic, runId, action, reason = '') {
      return rolloutRunFromPb(await callOnce<PbRolloutRunOutput>('ControlRollout', { topic, runId, action, reason }));
    },

    async getRollout(topic, runId) {
      return rolloutRunFromPb(await call<PbRolloutRunOutput>('GetRollout', { topic, runId }));
    },

    async listRollouts(topic, o = {}) {
      const res = await call<{ runs: PbRolloutRunOutput[] }>('ListRollouts', { topic, activeOnly: o.activeOnly ?? false });
      return res.runs.map(rolloutRunFromPb);
    },

    async listAudit(o = {}) {
      const res = await call<{ entries: PbAuditEntryOutput[]; nextCursor: string }>('ListAudit', {
        topic: o.topic ?? '',
        actor: o.actor ?? '',
        action: o.action ?? '',
        since: o.since ?? 0,
        until: o.until ?? 0,
        limit: o.limit ?? 0,
        cursor: o.cursor ?? '',
      });
      const items = res.entries.map(auditFromPb);
      return res.nextCursor === '' ? { items } : { items, next: res.nextCursor };
    },

    close() {
      pool.close();
      history?.pool.close();
    },
  };

  /** Streamed publishes of re-readable sources retry like unary calls (same publishId). */
  function retrying<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(pool, () => fn(), options.retry);
  }
}

function pinOf(pin: PbPinOutput | null): PinInfo {
  if (pin === null) throw new QuireError('INTERNAL', 'the publish service answered without a pin');
  return pinFromPb(pin);
}

function versionOf(res: PbPublishResponseOutput): VersionInfo {
  if (res.version === null) throw new QuireError('INTERNAL', 'the publish service answered without a version');
  return versionFromPb(res.version);
}

/**
 * Re-slice a byte stream into pieces of exactly `size` bytes (the last may be shorter).
 * A source already cut to `size` (a file read with highWaterMark = size) passes through
 * without a copy; only pieces that straddle source chunks are joined.
 */
async function* rechunk(source: AsyncIterable<unknown>, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const raw of source) {
    let buf = typeof raw === 'string' ? Buffer.from(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
    if (pendingBytes > 0) {
      const need = size - pendingBytes;
      if (buf.byteLength < need) {
        pending.push(buf);
        pendingBytes += buf.byteLength;
        continue;
      }
      pending.push(buf.subarray(0, need));
      yield Buffer.concat(pending, size);
      pending = [];
      pendingBytes = 0;
      buf = buf.subarray(need);
    }
    while (buf.byteLength >= size) {
      yield buf.subarray(0, size);
      buf = buf.subarray(size);
    }
    if (buf.byteLength > 0) {
      pending.push(buf);
      pendingBytes = buf.byteLength;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
