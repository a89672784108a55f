/**
 * History reads over the consume service's gRPC API (GetVersion, ListVersions, VersionAt,
 * ReadInline), and `download`, which returns a version's bytes only after checking them.
 * Shared by the consumer and by the publisher (when given a consume endpoint).
 */
import * as grpc from '@grpc/grpc-js';
import { tokenClientOptions } from './auth.ts';
import { Code, QuireError } from '@quire/core';
import type { ConsumerIdentity, Page } from '@quire/core';
import { loadQuireProto } from '@quire/proto';
import type { ConsumeServiceClient, PbConsumerIdentity, PbVersionDescriptorOutput } from '@quire/proto';
import { fromGrpcError } from './errors.ts';
import { S3Downloader, verifyPayload } from './download.ts';
import { CHANNEL_OPTIONS, HealthCheckedPool, type ClientPool, type HealthCheckOptions } from './balancer.ts';
import { versionFromPb, type VersionInfo } from './mapping.ts';
import { EndpointPool, unary, withRetry, type RetryOptions } from './transport.ts';

export interface ListVersionsOptions {
  limit?: number;
  cursor?: string;
  /** Oldest first (default: newest first). */
  ascending?: boolean;
}

/** The named identity fields travel in their own proto fields; the rest as attributes. */
export function identityToPb(identity: ConsumerIdentity): PbConsumerIdentity {
  const { region, application, cluster, instance, ...attributes } = identity;
  return { region: region ?? '', application: application ?? '', cluster: cluster ?? '', instance: instance ?? '', attributes };
}

function makeConsumeClient(address: string, token?: string, channelOptions: grpc.ChannelOptions = {}): ConsumeServiceClient {
  const Ctor = loadQuireProto().quire.v1.ConsumeService;
  const max = 64 * 1024 * 1024;
  return new Ctor(address, grpc.credentials.createInsecure(), {
    ...CHANNEL_OPTIONS,
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    ...tokenClientOptions(token),
    ...channelOptions,
  });
}

/** Plain round-robin over the endpoints as given (the publisher's history reads). */
export function createConsumePool(
  endpoints: readonly string[],
  token?: string,
  channelOptions?: grpc.ChannelOptions,
): EndpointPool<ConsumeServiceClient> {
  return new EndpointPool<ConsumeServiceClient>(endpoints, (address) => makeConsumeClient(address, token, channelOptions));
}

/** The consumer's pool: every resolved address, health-checked, healthy ones round-robin. */
export function createHealthCheckedConsumePool(
  endpoints: readonly string[],
  options?: HealthCheckOptions,
  token?: string,
  channelOptions?: grpc.ChannelOptions,
): HealthCheckedPool<ConsumeServiceClient> {
  return new HealthCheckedPool<ConsumeServiceClient>(endpoints, (address) => makeConsumeClient(address, token, channelOptions), options);
}

type ConsumePool = ClientPool<ConsumeServiceClient>;

export class History {
  readonly #pool: ConsumePool;
  readonly #identity: ConsumerIdentity;
  readonly #s3: S3Downloader;
  readonly #retry: RetryOptions;

  constructor(pool: ConsumePool, identity: ConsumerIdentity, s3: S3Downloader, retry: RetryOptions = {}) {
    this.#pool = pool;
    this.#identity = identity;
    this.#s3 = s3;
    this.#retry = retry;
  }

  #call<Res>(method: string, req: unknown): Promise<Res> {
    return withRetry(this.#pool, (client) => unary<Res>(client, method, req, { timeoutMs: 30_000 }), this.#retry);
  }

  async getVersion(topic: string, version: number): Promise<VersionInfo> {
    return versionFromPb(await this.#call<PbVersionDescriptorOutput>('GetVersion', { topic, version, identity: identityToPb(this.#identity) }));
  }

  async listVersions(topic: string, options: ListVersionsOptions = {}): Promise<Page<VersionInfo>> {
    const res = await this.#call<{ versions: PbVersionDescriptorOutput[]; nextCursor: string }>('ListVersions', {
      topic,
      limit: options.limit ?? 0,
      cursor: options.cursor ?? '',
      ascending: options.ascending ?? false,
    });
    const page: Page<VersionInfo> = { items: res.versions.map(versionFromPb) };
    if (res.nextCursor !== '') page.next = res.nextCursor;
    return page;
  }

  /** The version that was latest for this consumer at `at` (a Date or ms since the epoch). */
  async versionAt(topic: string, at: Date | number): Promise<VersionInfo> {
    const ms = at instanceof Date ? at.getTime() : at;
    return versionFromPb(await this.#call<PbVersionDescriptorOutput>('VersionAt', { topic, at: ms, identity: identityToPb(this.#identity) }));
  }

  /** The bytes of `v` (inline: ReadInline; S3: own region first), verified against size and SHA-256. */
  async bytesOf(v: VersionInfo): Promise<Uint8Array> {
    if (v.deletedAt !== undefined) throw new QuireError(Code.NOT_FOUND, `${v.topic} version ${v.version} was deleted`, { field: 'version' });
    if (v.pointer.kind === 's3') return this.#s3.fetch(v, (x) => this.readThroughService(x));
    const res = await this.#call<{ data: Buffer }>('ReadInline', { topic: v.topic, version: v.version });
    const bytes = new Uint8Array(res.data.buffer, res.data.byteOffset, res.data.byteLength);
    verifyPayload(bytes, v);
    return bytes;
  }

  /**
   * The bytes of any version streamed through the consume service (ReadData): for
   * versions in a blob store this client cannot reach itself (the embedded default's local
   * directory, an S3 region without credentials here), and as the last resort when every
   * S3 region failed. Verified against size and SHA-256.
   */
  async readThroughService(v: VersionInfo): Promise<Uint8Array> {
    const bytes = await withRetry(
      this.#pool,
      (client) =>
        new Promise<Uint8Array>((resolve, reject) => {
          const call = (client as unknown as { ReadData(req: unknown, opts: grpc.CallOptions): grpc.ClientReadableStream<{ data: Buffer }> }).ReadData(
            { topic: v.topic, version: v.version, region: this.#identity.region ?? '' },
            { deadline: Date.now() + 10 * 60_000 },
          );
          const chunks: Buffer[] = [];
          call.on('data', (m: { data: Buffer }) => chunks.push(m.data));
          call.on('error', (err: grpc.ServiceError) => reject(fromGrpcError(err)));
          call.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
        }),
      this.#retry,
    );
    verifyPayload(bytes, v);
    return bytes;
  }

  async download(topic: string, version: number): Promise<Uint8Array> {
    return this.bytesOf(await this.getVersion(topic, version));
  }
}
