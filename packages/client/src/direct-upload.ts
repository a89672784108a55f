/**
 * Direct upload: the SDK puts a large payload straight into S3, in every region the
 * publish service names, then has the service commit it (`PrepareUpload` →
 * upload → `CommitUploaded`). The bytes never pass through the publish service; it reads
 * the object once to check size and SHA-256 before the version becomes visible. If the
 * commit fails, the uploaded objects are deleted (best effort; the orphan sweep covers
 * the rest). Encrypted topics are refused before anything is uploaded (this path does not
 * encrypt; `publish` does).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Code, QuireError, type Metadata, type Scope } from '@quire/core';
import { loadQuireProto, type PbPublishResponseOutput, type PublishServiceClient } from '@quire/proto';
import { s3RegionClient, type S3RegionClientOptions } from './download.ts';
import { versionFromPb, type VersionInfo } from './mapping.ts';
import { ACTOR_METADATA } from './publisher.ts';
import { unary } from './transport.ts';
import { tokenClientOptions } from './auth.ts';
import { uploadRanges, type RangeSource } from './multipart.ts';

export interface DirectUploaderOptions {
  /** Publish service gRPC address. */
  endpoint: string;
  actor?: string;
  /** API token, sent as `authorization: Bearer …`. */
  token?: string;
  /** How to reach S3 in each region the payload goes to. */
  s3: Readonly<Record<string, S3RegionClientOptions>>;
  /** Multipart part size (default 8 MiB; S3's minimum is 5 MiB). */
  partSizeBytes?: number;
  /**
   * Parts in flight per region (default 4, as a plain lib-storage `Upload` tuned for
   * throughput). Each part is read from its byte range of the file as it is sent
   * (multipart.ts): memory does not grow with the part size or the queue.
   */
  queueSize?: number;
}

export interface DirectPublishInput {
  /** A file path or bytes: a file is read once for its SHA-256 and once per region, by part. */
  file?: string;
  data?: Uint8Array;
  metadata?: Metadata;
  contentType?: string;
  scopes?: Scope[];
  /** Regions to upload to (default: every region the service is configured with). */
  regions?: string[];
  onProgress?: (p: { region: string; loaded: number; total: number }) => void;
}

export interface DirectUploader {
  publish(topic: string, input: DirectPublishInput): Promise<VersionInfo>;
  close(): void;
}

export function createDirectUploader(options: DirectUploaderOptions): DirectUploader {
  const Ctor = loadQuireProto().quire.v1.PublishService;
  const client: PublishServiceClient = new Ctor(options.endpoint, grpc.credentials.createInsecure(), tokenClientOptions(options.token));
  const s3 = new Map<string, S3Client>();
  for (const [name, r] of Object.entries(options.s3)) {
    s3.set(
      name,
      // Retried by multipart.ts, which reads a part's range again (a client retry would
      // resend a half-read stream).
      s3RegionClient(name, r, { maxAttempts: 1 }),
    );
  }
  const md = (): grpc.Metadata => {
    const m = new grpc.Metadata();
    if (options.actor) m.set(ACTOR_METADATA, options.actor);
    return m;
  };

  return {
    async publish(topic, input) {
      if ((input.file === undefined) === (input.data === undefined)) throw QuireError.invalid('file', 'give exactly one of file or data');
      const before = input.file !== undefined ? await stat(input.file) : undefined;
      const total = before !== undefined ? before.size : (input.data as Uint8Array).byteLength;
      const source: RangeSource = input.file !== undefined ? { file: input.file, size: total } : { data: input.data as Uint8Array, size: total };
      // An encrypted topic takes only payloads encrypted under its key, which this path does
      // not do: refuse before a byte is uploaded rather than at the commit.
      const t = await unary<{ encryption: { keyId: string } | null }>(client, 'GetTopic', { name: topic }, { metadata: md() }).catch((err: unknown) => {
        throw err instanceof QuireError && err.code === Code.NOT_FOUND ? new QuireError(Code.NOT_FOUND, err.message, { field: 'topic', cause: err }) : err;
      });
      if (t.encryption !== null && t.encryption !== undefined) {
        throw new QuireError(Code.FAILED_PRECONDITION, `topic ${topic} is encrypted (key "${t.encryption.keyId}"): the direct uploader does not encrypt; use publish() with a keyring`, {
          field: 'topic',
        });
      }
      const prepared = await unary<{ publishId: string; key: string; locations: Array<{ region: string; bucket: string; key: string }> }>(
        client,
        'PrepareUpload',
        { topic, regions: input.regions ?? [] },
        { metadata: md() },
      );
      for (const l of prepared.locations) {
        if (!s3.has(l.region)) throw QuireError.invalid('s3', `no S3 access configured for region ${l.region}`);
      }
      const uploaded: Array<{ region: string; bucket: string; key: string }> = [];
      const removeUploaded = () =>
        Promise.all(uploaded.map((l) => s3.get(l.region)?.send(new DeleteObjectCommand({ Bucket: l.bucket, Key: l.key })).catch(() => undefined)));
      const partSize = Math.max(5 * 1024 * 1024, options.partSizeBytes ?? 8 * 1024 * 1024);
      const queueSize = Math.max(1, options.queueSize ?? 4);
      // Every region at once, each sending the source's parts by range (a file is read from the
      // page cache; bytes are shared): the slowest region sets the time, not their sum.
      const uploadTo = async (loc: { region: string; bucket: string; key: string }): Promise<void> => {
        let loaded = 0;
        await uploadRanges(s3.get(loc.region) as S3Client, loc.bucket, loc.key, source, {
          partSize,
          queueSize,
          contentType: input.contentType ?? 'application/octet-stream',
          onBytes: (delta) => {
            loaded += delta;
            input.onProgress?.({ region: loc.region, loaded, total });
          },
        });
        uploaded.push(loc);
      };
      // The SHA-256 of the source, read once beside the uploads.
      const digest = async (): Promise<string> => {
        const hash = createHash('sha256');
        if (input.file === undefined) return hash.update(input.data as Uint8Array).digest('hex');
        for await (const chunk of createReadStream(input.file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
        return hash.digest('hex');
      };
      try {
        const done = await Promise.allSettled([digest(), ...prepared.locations.map(uploadTo)]);
        const failed = done.find((d): d is PromiseRejectedResult => d.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        const sha256 = (done[0] as PromiseFulfilledResult<string>).value;
        // A file written to meanwhile: its parts and its hash may not be of the same bytes (the
        // service's read-back check would refuse the commit; say why before getting there).
        const after = input.file !== undefined ? await stat(input.file) : undefined;
        if (before !== undefined && after !== undefined && (after.size !== before.size || after.mtimeMs !== before.mtimeMs)) {
          throw new QuireError(Code.DATA_LOSS, `${input.file} changed while it was uploaded`, { field: 'file' });
        }
        const res = await unary<PbPublishResponseOutput>(
          client,
          'CommitUploaded',
          {
            options: { topic, metadata: input.metadata ?? {}, contentType: input.contentType ?? '', scopes: (input.scopes ?? []).map((s) => ({ attributes: s })), publishId: prepared.publishId, size: total, sha256 },
            locations: prepared.locations,
          },
          { metadata: md(), timeoutMs: 10 * 60_000 },
        );
        if (res.version === null || res.version === undefined) throw new QuireError(Code.INTERNAL, 'the publish service answered without a version');
        return versionFromPb(res.version);
      } catch (err) {
        await removeUploaded();
        throw err instanceof QuireError ? err : QuireError.from(err, Code.UNAVAILABLE);
      }
    },
    close() {
      client.close();
      for (const c of s3.values()) c.destroy();
    },
  };
}
