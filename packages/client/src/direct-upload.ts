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
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Code, QuireError, type Metadata, type Scope } from '@quire/core';
import { loadQuireProto, type PbPublishResponseOutput, type PublishServiceClient } from '@quire/proto';
import type { S3RegionClientOptions } from './download.ts';
import { versionFromPb, type VersionInfo } from './mapping.ts';
import { ACTOR_METADATA } from './publisher.ts';
import { unary } from './transport.ts';
import { tokenClientOptions } from './auth.ts';

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
   * throughput). Memory: about regions × (queueSize + 2) × partSize (48 MiB per region with
   * the defaults).
   */
  queueSize?: number;
}

export interface DirectPublishInput {
  /** A file path or bytes: the source is read once per region. */
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
      new S3Client({
        region: r.awsRegion ?? (r.endpoint === undefined ? name : 'us-east-1'),
        ...(r.endpoint === undefined ? {} : { endpoint: r.endpoint }),
        forcePathStyle: r.forcePathStyle ?? r.endpoint !== undefined,
        ...(r.accessKeyId === undefined || r.secretAccessKey === undefined ? {} : { credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } }),
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
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
      const total = input.file !== undefined ? (await stat(input.file)).size : (input.data as Uint8Array).byteLength;
      const open = (): Readable => (input.file !== undefined ? createReadStream(input.file) : Readable.from([Buffer.from(input.data as Uint8Array)]));
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
      // Every region at once, each reading the source on its own (a file is read from the
      // page cache; bytes are shared): the slowest region sets the time, not their sum.
      const uploadTo = async (loc: { region: string; bucket: string; key: string }): Promise<string> => {
        const hash = createHash('sha256');
        let loaded = 0;
        const body = open();
        body.on('data', (c: Buffer) => {
          hash.update(c);
          loaded += c.length;
          input.onProgress?.({ region: loc.region, loaded, total });
        });
        const upload = new Upload({
          client: s3.get(loc.region) as S3Client,
          params: { Bucket: loc.bucket, Key: loc.key, Body: body, ContentType: input.contentType ?? 'application/octet-stream' },
          partSize,
          queueSize,
          leavePartsOnError: false,
        });
        await upload.done();
        uploaded.push(loc);
        return hash.digest('hex');
      };
      try {
        const digests = await Promise.allSettled(prepared.locations.map(uploadTo));
        const failed = digests.find((d): d is PromiseRejectedResult => d.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        const shas = new Set(digests.map((d) => (d as PromiseFulfilledResult<string>).value));
        if (shas.size !== 1) throw new QuireError(Code.DATA_LOSS, 'the source changed while it was uploaded to the regions', { field: 'file' });
        const sha256 = [...shas][0] as string;
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
