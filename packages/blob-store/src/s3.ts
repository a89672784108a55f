/**
 * BlobStore on S3 (AWS or any S3-compatible server such as s3proxy), one bucket per region.
 *
 * A put reads its source once and streams it into every chosen region at the same time
 * (multipart uploads through `@aws-sdk/lib-storage`, 4 parts in flight per region); memory
 * stays at a few parts per region whatever the object's size. If any region fails, the others are cancelled (an
 * unfinished multipart upload is aborted, so nothing becomes visible) and objects already
 * completed are deleted before the put rejects.
 *
 * This is the only file of Quire that imports `@aws-sdk/*`.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { BucketLocationConstraint } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PassThrough, Readable } from 'node:stream';
import type {
  BlobGetOptions,
  BlobGetResult,
  BlobHead,
  BlobListEntry,
  BlobPutOptions,
  BlobPutResult,
  BlobStore,
} from '@quire/core';
import { Code, QuireError } from '@quire/core';
import {
  checkKey,
  checkPrefix,
  checkPut,
  checkRegion,
  missingEverywhere,
  resolveRegions,
  toReadable,
  translatingBody,
} from './common.ts';
import { tee } from './tee.ts';

export interface S3RegionOptions {
  /** Region name, as used in BlobLocation and in `regions` options (e.g. `eu-west-1`). */
  name: string;
  /** Endpoint URL of an S3-compatible server (`http://127.0.0.1:8081`); AWS when absent. */
  endpoint?: string;
  bucket: string;
  /** Static credentials; the SDK's default provider chain when absent. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Signing region (default: `name` when no endpoint is given, else `us-east-1`). */
  awsRegion?: string;
  /** Path-style URLs (`endpoint/bucket/key`); default true when an endpoint is given. */
  forcePathStyle?: boolean;
}

export interface S3BlobStoreOptions {
  regions: readonly S3RegionOptions[];
  /** Multipart part size (default and minimum 5 MiB, the S3 minimum for non-final parts). */
  partSizeBytes?: number;
  /**
   * Parts uploaded at once per region (default 4, lib-storage's own default). Each of
   * lib-storage's workers reads a part, then waits for its upload before reading the next:
   * with 1 the source stood still during every part's PUT and S3 sat idle while the next
   * part was read (a 1 GiB publish ran at 0.6× a plain `Upload`, see bench/analysis.md).
   * A put holds about regions × (queueSize + 2) × partSize bytes, whatever the object's
   * size (the parts in flight, the one being filled and its pieces before they are joined);
   * socket buffers add to it on a loaded machine: 2 regions, queueSize 2 measured 32-52 MiB.
   */
  queueSize?: number;
  /** Attempts per S3 request, first one included (default 3). */
  maxAttempts?: number;
  /** Give up connecting to a region after this long (default 2000 ms), so a dead region fails fast. */
  connectTimeoutMs?: number;
  /** Give up on a connection idle this long mid-request (default 30 000 ms). */
  socketTimeoutMs?: number;
}

/** The S3 adapter: a BlobStore, plus `destroy()` to close its connections. */
export interface S3BlobStore extends BlobStore {
  /** Close every region's connection pool. The store must not be used afterwards. */
  destroy(): void;
}

const MIN_PART = 5 * 1024 * 1024;

interface Region {
  name: string;
  bucket: string;
  awsRegion: string;
  client: S3Client;
}

export function createS3BlobStore(options: S3BlobStoreOptions): S3BlobStore {
  const partSize = options.partSizeBytes ?? MIN_PART;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART) {
    throw QuireError.invalid('partSizeBytes', `must be an integer of at least ${MIN_PART} (5 MiB)`);
  }
  const queueSize = options.queueSize ?? 4;
  if (!Number.isSafeInteger(queueSize) || queueSize < 1) throw QuireError.invalid('queueSize', 'must be an integer of 1 or more');
  const regions = buildRegions(options);
  const names = regions.map((r) => r.name);
  const byName = new Map(regions.map((r) => [r.name, r]));
  const regionOf = (name: string): Region => byName.get(name) as Region;

  async function put(key: string, body: Readable | Uint8Array, putOptions: BlobPutOptions = {}): Promise<BlobPutResult> {
    let args;
    let source: Readable;
    try {
      args = checkPut(key, putOptions, names);
      source = toReadable(body);
    } catch (err) {
      if (body instanceof Readable) body.destroy();
      throw err;
    }
    const controller = new AbortController();
    const fail = (err: unknown): void => {
      if (!controller.signal.aborted) controller.abort(err);
    };
    const lanes = args.regions.map((name) => {
      const region = regionOf(name);
      const pass = new PassThrough({ highWaterMark: 256 * 1024 });
      pass.on('error', () => undefined); // only our own cancellation; the upload reports it
      const upload = new Upload({
        client: region.client,
        params: { Bucket: region.bucket, Key: args.key, Body: pass, ContentType: args.contentType, Metadata: args.metadata },
        partSize,
        queueSize,
        leavePartsOnError: false,
      });
      // true once the object is complete in this region; a failure cancels the whole put.
      const done = upload.done().then(
        () => true,
        (err: unknown) => {
          fail(s3Error(err, `region ${name}: uploading ${args.key}`));
          return false;
        },
      );
      return { region, pass, done };
    });
    let result;
    try {
      result = await tee(source, lanes.map((l) => l.pass), {
        size: args.size,
        onProgress: args.onProgress,
        signal: controller.signal,
      });
    } catch (err) {
      fail(err);
    }
    if (controller.signal.aborted) {
      // The streams feeding the uploads were never ended: destroying them makes each Upload fail and abort its
      // multipart upload (awaited inside done()), so no partial object can appear.
      for (const l of lanes) l.pass.destroy(new Error('put cancelled'));
    }
    const completed = await Promise.all(lanes.map((l) => l.done));
    if (!controller.signal.aborted && result !== undefined) {
      return {
        size: result.size,
        sha256: result.sha256,
        locations: lanes.map((l) => ({ region: l.region.name, bucket: l.region.bucket, key: args.key })),
      };
    }
    // Some region failed after others had completed: take those objects back.
    const undo = await Promise.allSettled(
      lanes.filter((_, i) => completed[i]).map((l) => l.region.client.send(new DeleteObjectCommand({ Bucket: l.region.bucket, Key: args.key }))),
    );
    const reason = QuireError.from(controller.signal.reason);
    const leftovers = undo.filter((u) => u.status === 'rejected').length;
    if (leftovers > 0) {
      throw new QuireError(reason.code, `${reason.message} (and ${leftovers} completed copies could not be deleted; the orphan sweep will)`, {
        ...(reason.field === undefined ? {} : { field: reason.field }),
        cause: reason,
      });
    }
    throw reason;
  }

  async function get(key: string, getOptions: BlobGetOptions = {}): Promise<BlobGetResult> {
    const k = checkKey(key);
    const order = resolveRegions(getOptions.regions, names);
    const failures: QuireError[] = [];
    for (const name of order) {
      const region = regionOf(name);
      try {
        const out = await region.client.send(new GetObjectCommand({ Bucket: region.bucket, Key: k }));
        if (!(out.Body instanceof Readable)) {
          throw new QuireError(Code.INTERNAL, `region ${name}: the S3 client returned no readable body for ${k}`);
        }
        const body = translatingBody(out.Body, (e) => s3Error(e, `region ${name}: reading ${k}`));
        return { region: name, size: out.ContentLength ?? 0, body };
      } catch (err) {
        const e = s3Error(err, `region ${name}: reading ${k}`);
        if (e.code !== Code.NOT_FOUND) failures.push(e); // unreachable or refused: remember, try the next region
      }
    }
    throw missingEverywhere(k, order, failures);
  }

  async function head(key: string, regionName: string): Promise<BlobHead | undefined> {
    const k = checkKey(key);
    const region = regionOf(checkRegion(regionName, names));
    try {
      const out = await region.client.send(new HeadObjectCommand({ Bucket: region.bucket, Key: k }));
      return {
        region: region.name,
        size: out.ContentLength ?? 0,
        ...(out.ContentType === undefined ? {} : { contentType: out.ContentType }),
        metadata: { ...out.Metadata },
      };
    } catch (err) {
      const e = s3Error(err, `region ${region.name}: head ${k}`);
      if (e.code === Code.NOT_FOUND) return undefined;
      throw e;
    }
  }

  async function del(key: string, regionList?: readonly string[]): Promise<void> {
    const k = checkKey(key);
    const targets = resolveRegions(regionList, names).map(regionOf);
    const results = await Promise.allSettled(
      targets.map(async (region) => {
        try {
          await region.client.send(new DeleteObjectCommand({ Bucket: region.bucket, Key: k }));
        } catch (err) {
          const e = s3Error(err, `region ${region.name}: deleting ${k}`);
          if (e.code !== Code.NOT_FOUND) throw e; // S3 itself answers 204 for a missing key
        }
      }),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  function list(prefix: string, regionName: string): AsyncIterable<BlobListEntry> {
    const p = checkPrefix(prefix);
    const region = regionOf(checkRegion(regionName, names));
    return {
      async *[Symbol.asyncIterator]() {
        let token: string | undefined;
        do {
          let page;
          try {
            page = await region.client.send(
              new ListObjectsV2Command({ Bucket: region.bucket, Prefix: p, ...(token === undefined ? {} : { ContinuationToken: token }) }),
            );
          } catch (err) {
            throw s3Error(err, `region ${region.name}: listing ${p}`);
          }
          for (const o of page.Contents ?? []) {
            if (o.Key === undefined) continue;
            yield { key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0 };
          }
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token !== undefined);
      },
    };
  }

  async function init(): Promise<void> {
    for (const region of regions) {
      try {
        await region.client.send(new HeadBucketCommand({ Bucket: region.bucket }));
        continue; // exists (and is ours): nothing to do, no CreateBucket permission needed
      } catch (err) {
        const e = s3Error(err, `region ${region.name}: bucket ${region.bucket}`);
        if (e.code !== Code.NOT_FOUND) throw e;
      }
      try {
        await region.client.send(
          new CreateBucketCommand({
            Bucket: region.bucket,
            ...(region.awsRegion === 'us-east-1'
              ? {}
              : { CreateBucketConfiguration: { LocationConstraint: region.awsRegion as BucketLocationConstraint } }),
          }),
        );
      } catch (err) {
        // Another process created it between our HEAD and our CREATE: fine.
        if ((err as { name?: string }).name === 'BucketAlreadyOwnedByYou') continue;
        throw s3Error(err, `region ${region.name}: creating bucket ${region.bucket}`);
      }
    }
  }

  return {
    regions: names,
    bucketOf: (region: string) => regionOf(checkRegion(region, names)).bucket,
    init,
    put,
    get,
    head,
    delete: del,
    list,
    destroy(): void {
      for (const r of regions) r.client.destroy();
    },
  };
}

function buildRegions(options: S3BlobStoreOptions): Region[] {
  if (!Array.isArray(options?.regions) || options.regions.length === 0) {
    throw QuireError.invalid('regions', 'must list at least one region');
  }
  const seen = new Set<string>();
  const maxAttempts = options.maxAttempts ?? 3;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) throw QuireError.invalid('maxAttempts', 'must be an integer of 1 or more');
  return options.regions.map((r, i) => {
    const f = `regions[${i}]`;
    if (typeof r.name !== 'string' || r.name === '') throw QuireError.invalid(`${f}.name`, 'is required');
    if (seen.has(r.name)) throw QuireError.invalid(`${f}.name`, `repeats region "${r.name}"`);
    seen.add(r.name);
    if (typeof r.bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(r.bucket)) {
      throw QuireError.invalid(`${f}.bucket`, 'must be a valid bucket name (3-63 characters of a-z, 0-9, "." and "-")');
    }
    if ((r.accessKeyId === undefined) !== (r.secretAccessKey === undefined)) {
      throw QuireError.invalid(`${f}.secretAccessKey`, 'accessKeyId and secretAccessKey go together');
    }
    if (r.endpoint !== undefined && !URL.canParse(r.endpoint)) throw QuireError.invalid(`${f}.endpoint`, 'must be a URL');
    const awsRegion = r.awsRegion ?? (r.endpoint === undefined ? r.name : 'us-east-1');
    const client = new S3Client({
      region: awsRegion,
      ...(r.endpoint === undefined ? {} : { endpoint: r.endpoint }),
      forcePathStyle: r.forcePathStyle ?? r.endpoint !== undefined,
      ...(r.accessKeyId === undefined || r.secretAccessKey === undefined
        ? {}
        : { credentials: { accessKeyId: r.accessKeyId, secretAccessKey: r.secretAccessKey } }),
      maxAttempts,
      // Checksums only where S3 demands them: S3-compatible servers vary in their support
      // of the newer flexible checksums, and we compute SHA-256 ourselves anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? 2000,
        socketTimeout: options.socketTimeoutMs ?? 30_000,
      },
    });
    return { name: r.name, bucket: r.bucket, awsRegion, client };
  });
}

/** Node socket error codes: the region could not be reached or the connection broke. */
const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** AWS SDK and socket errors → QuireError codes, in one place (the original is kept as `cause`). */
export function s3Error(err: unknown, what: string): QuireError {
  if (err instanceof QuireError) return err;
  const e = (err ?? {}) as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const message = `${what}: ${name && name !== 'Error' ? `${name}: ` : ''}${e.message ?? String(err)}`;
  const as = (code: Code): QuireError => new QuireError(code, message, { cause: err });

  // The bucket is missing: a configuration problem (init() not run), not a missing object.
  if (name === 'NoSuchBucket') return as(Code.FAILED_PRECONDITION);
  // The object is missing (GET answers NoSuchKey; HEAD has no body, so only NotFound / 404).
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return as(Code.NOT_FOUND);
  // Refused: wrong credentials, a bucket policy, or a bucket owned by someone else.
  if (
    name === 'AccessDenied' ||
    name === 'Forbidden' ||
    name === 'InvalidAccessKeyId' ||
    name === 'SignatureDoesNotMatch' ||
    name === 'BucketAlreadyExists' ||
    status === 403
  ) {
    return as(Code.PERMISSION_DENIED);
  }
  // The region cannot be reached or the connection broke: retryable, another region may do.
  if (e.code !== undefined && CONNECTION_ERRORS.has(e.code)) return as(Code.UNAVAILABLE);
  // Our connect/socket timeouts (smithy's TimeoutError) and S3's own RequestTimeout: a slow or hung region.
  if (name === 'TimeoutError' || name === 'RequestTimeout') return as(Code.UNAVAILABLE);
  // Throttling and server-side failures: S3 asks us to come back later.
  if (name === 'SlowDown' || name === 'ServiceUnavailable' || name === 'InternalError' || (status !== undefined && status >= 500)) {
    return as(Code.UNAVAILABLE);
  }
  // Anything else (a 400 we did not expect, a parse failure) is a bug on our side.
  return as(Code.INTERNAL);
}
