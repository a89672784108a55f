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
import { S3Downloader, fileSink, readVerified, streamVerified, verifyPayload, type DownloadProgress, type PayloadSink, type PayloadTransform } from './download.ts';
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
    assertLive(v);
    if (v.pointer.kind === 's3') return this.#s3.fetch(v, (x) => this.readThroughService(x));
    const bytes = await this.#readInline(v);
    verifyPayload(bytes, v);
    return bytes;
  }

  /**
   * The bytes of any version streamed through the consume service (ReadData): for
   * versions in a blob store this client cannot reach itself (the embedded default's local
   * directory, an S3 region without credentials here), and as the last resort when every
   * S3 region failed. Verified against size and SHA-256 as the chunks arrive (one buffer).
   */
  async readThroughService(v: VersionInfo): Promise<Uint8Array> {
    return this.#throughService(v, (body) => readVerified(body, v));
  }

  /** ReadData's chunks handed to `consume` (retried as a whole on another endpoint when the call fails). */
  #throughService<T>(v: VersionInfo, consume: (body: AsyncIterable<Uint8Array>) => Promise<T>): Promise<T> {
    return withRetry(
      this.#pool,
      async (client) => {
        const call = (client as unknown as { ReadData(req: unknown, opts: grpc.CallOptions): grpc.ClientReadableStream<{ data: Buffer }> }).ReadData(
          { topic: v.topic, version: v.version, region: this.#identity.region ?? '' },
          { deadline: Date.now() + 10 * 60_000 },
        );
        call.on('error', () => undefined); // surfaced by the iteration below; our own cancel() must not throw
        async function* body(): AsyncGenerator<Uint8Array> {
          try {
            for await (const m of call as AsyncIterable<{ data: Buffer }>) yield m.data;
          } catch (err) {
            throw fromGrpcError(err);
          }
        }
        try {
          return await consume(body());
        } finally {
          call.cancel();
        }
      },
      this.#retry,
    );
  }

  /** An inline version's bytes as the service holds them (unverified). */
  async #readInline(v: VersionInfo): Promise<Uint8Array> {
    const res = await this.#call<{ data: Buffer }>('ReadInline', { topic: v.topic, version: v.version });
    return new Uint8Array(res.data.buffer, res.data.byteOffset, res.data.byteLength);
  }

  /**
   * A version's bytes written to the file `path` without holding them in memory: streamed
   * from S3 (own region first) or the consume service through the SHA-256 check (and
   * `transform`: decryption) into a temp file beside `path`, fsynced, and renamed to `path`
   * only once verified. A refused or failed attempt deletes its temp file and moves on to
   * the next region, as `bytesOf` does. Inline versions are written the same way.
   */
  async saveTo(
    v: VersionInfo,
    path: string,
    options: { onProgress?: (p: DownloadProgress) => void; transform?: () => Promise<PayloadTransform | undefined> } = {},
  ): Promise<string> {
    assertLive(v);
    let source = 'inline';
    const progress = options.onProgress === undefined ? undefined : (loaded: number) => options.onProgress?.({ loaded, total: v.size, source });
    // The first sink (temp file, decryption) is made before any byte is read: a missing key
    // or an unwritable directory fails at once, not once per region.
    let first: PayloadSink<string> | undefined = await fileSink(path, await options.transform?.());
    const sink = async (): Promise<PayloadSink<string>> => {
      const s = first ?? (await fileSink(path, await options.transform?.()));
      first = undefined;
      return s;
    };
    const into = async (body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> => streamVerified(body, v, await sink(), progress);
    try {
      if (v.pointer.kind === 's3') {
        return await this.#s3.fetchInto(
          v,
          (s) => {
            source = s;
          },
          into,
          (x) => this.#throughService(x, into),
        );
      }
      return await into([await this.#readInline(v)]);
    } finally {
      // Never used (every source failed before a byte came): its temp file goes too.
      await first?.abort();
    }
  }

  async download(topic: string, version: number): Promise<Uint8Array> {
    return this.bytesOf(await this.getVersion(topic, version));
  }
}

/** NOT_FOUND (field `version`) for a deleted version: its bytes are gone. */
function assertLive(v: VersionInfo): void {
  if (v.deletedAt !== undefined) throw new QuireError(Code.NOT_FOUND, `${v.topic} version ${v.version} was deleted`, { field: 'version' });
}
